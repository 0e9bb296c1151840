# K2 — one entry point for people and CI. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: install demo demo-live test test-quick lint console console-check browser bench bench-scale schemas dashboards platform-up platform-down platform-status clean

install:  ## install uv when missing, then the locked environment
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

demo: install  ## load a synthetic week into the embedded lake (./.k2), tour it, then serve it (Ctrl-C stops)
	@echo "make demo writes to ./.k2 (K2_DATA_DIR); k2 lake reset --dry-run shows what emptying it removes"
	@$(UV) run --frozen k2 demo --serve

demo-live: install  ## with the platform up: replay a generated Binance-format recording into Kafka, sink it to Iceberg, query it
	@$(UV) run --frozen k2 --profile platform demo --live

test: install  ## every test tier but benchmarks
	@$(UV) run --frozen pytest -m "not benchmark" $(PYTEST_ARGS)

test-quick: install  ## unit tests only, for the edit loop
	@$(UV) run --frozen pytest tests/unit -m "not integration and not kafka and not platform and not e2e and not benchmark" $(PYTEST_ARGS)

lint: install  ## ruff, mypy strict, import layers
	@$(UV) run --frozen ruff check src tests benchmarks examples deploy
	@$(UV) run --frozen ruff format --check src tests benchmarks examples deploy
	@$(UV) run --frozen mypy
	@$(UV) run --frozen lint-imports

console:  ## build the web console (console/, TypeScript) into src/k2/api/console/console.js, from the locked packages
	@cd console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

console-check: console  ## rebuild the console and fail if the committed bundle differs from the build
	@git diff --exit-code --stat -- src/k2/api/console || { echo "src/k2/api/console differs from a rebuild of console/: run make console and commit"; exit 1; }

browser:  ## Debian's chromium for the browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser)
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; }

bench: install  ## benchmarks (not part of the test run; with the `bench` group's peers); a full run rewrites docs/benchmarks.md
	@$(UV) run --frozen --group bench python -m benchmarks.run

bench-scale: install  ## the scale benchmark (1M-100M trades, about half an hour; not in `make bench`): replaces its own section of docs/benchmarks.md
	@$(UV) run --frozen --group bench python -m benchmarks.run --only scale

schemas: install  ## regenerate the Avro .avsc files from the record declarations
	@$(UV) run --frozen python -c "from pathlib import Path; from k2.schemas.avsc import write_avsc; write_avsc(Path('src/k2/schemas/avro'))"

dashboards: install  ## regenerate the Grafana dashboards' JSON (deploy/grafana/dashboards) from deploy/grafana/*.py
	@$(UV) run --frozen python -m deploy.grafana

platform-up: install  ## install (first run: minutes) and start PostgreSQL, MinIO, Kafka, the registry, Alertmanager and Prometheus
	@$(UV) run --frozen k2 platform up

platform-down: install  ## stop the platform's services; their data stays in .k2/platform
	@$(UV) run --frozen k2 platform down

platform-status: install  ## health of each platform service
	@$(UV) run --frozen k2 platform status

clean:
	rm -rf .k2 .pytest_cache .mypy_cache .ruff_cache .artifacts
