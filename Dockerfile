# K2's own processes (`k2 serve`, `k2 stream run`, producers) in one image; docker-compose.yml
# runs it as k2-api and k2-sink. Build context: the repository root.
FROM python:3.11.15-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Locked dependencies first (a layer that survives source edits), then K2 itself, not editable.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/k2 k2
USER k2
ENV PATH=/app/.venv/bin:$PATH \
    K2_DATA_DIR=/var/lib/k2 \
    K2_OBS_LOG_FORMAT=json \
    K2_OBS_LOG_LEVEL=INFO

ENTRYPOINT ["k2"]
CMD ["--help"]
