"""Prometheus and Alertmanager from Debian's packages: the platform's metrics, rules and alerts.

Both are unpacked from their ``.deb`` into the shared software home (never ``apt-get install``ed:
their maintainer scripts would start system daemons on the default ports) and run on loopback with
their data under ``<platform data>/prometheus`` and ``<platform data>/alertmanager``.

K2 writes both configurations at every start (and has a running server reload them), as JSON,
which YAML parsers read as YAML. Prometheus scrapes itself, Alertmanager, MinIO and every K2
process registered through :mod:`k2.obs.discovery`; it evaluates every ``*.yml`` rule file of
the ``k2.obs`` package's ``rules`` folder and sends alerts to Alertmanager, which keeps them for
its HTTP API (this machine has nowhere to deliver a notification). Neither web UI works unpacked:
Debian builds Alertmanager without one, and Prometheus reads its pages from
``/usr/share/prometheus/web``.
"""

from __future__ import annotations

import json
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

import k2.obs
from k2.errors import ConfigurationError
from k2.obs.discovery import prune, targets_dir
from k2.platform.process import ServerProcess, ensure_free, http_get, wait_until
from k2.platform.service import Health
from k2.platform.software import DebianPackage, installing, scratch_for
from k2.settings import K2Settings

#: Debian 12 (bookworm) packages K2 unpacks.
PROMETHEUS = DebianPackage("prometheus", "2.42.0+ds-5+deb12u1")
ALERTMANAGER = DebianPackage("prometheus-alertmanager", "0.25.0-1+b4")
#: How often targets are scraped and rules evaluated.
INTERVAL = "5s"
#: How soon a firing alert is sent to Alertmanager again (Prometheus's default is 1m; an alert
#: that fires before Alertmanager is discovered waits this long).
RESEND_DELAY = "10s"
#: How long Prometheus keeps samples: a local platform for tests and demos, not an archive.
RETENTION = "2d"
#: Seconds one HTTP request of a health check or reload may take.
HEALTH_TIMEOUT_S = 3.0
#: Where Debian's Alertmanager reads its default notification templates: a fixed path (Debian's
#: patch replaces the templates upstream embeds in the binary), so they are copied there.
ALERTMANAGER_TEMPLATES = Path("/usr/share/prometheus/alertmanager")


def rule_files() -> list[Path]:
    """K2's alert and recording rule files: every ``*.yml`` in the ``k2.obs`` package's ``rules`` folder."""
    return sorted((Path(k2.obs.__file__).parent / "rules").glob("*.yml"))


def promtool(settings: K2Settings) -> Path:
    """The ``promtool`` of the platform's Prometheus (for ``check rules``, ``test rules``), installed
    into the shared software home when missing.

    Raises:
        ConfigurationError: Debian's prometheus package cannot be downloaded.
    """
    PROMETHEUS.install(settings.platform.home)
    return PROMETHEUS.root(settings.platform.home) / "usr" / "bin" / "promtool"


def prometheus_config(settings: K2Settings, rules: Sequence[Path]) -> dict[str, object]:
    """The configuration K2 gives the platform's Prometheus, evaluating the rule files ``rules``
    (:func:`rule_files` when it runs; none: no ``rule_files`` section).
    """
    platform = settings.platform
    targets = str(targets_dir(settings) / "*.json")

    def static(job: str, port: int, path: str = "/metrics") -> dict[str, object]:
        return {"job_name": job, "metrics_path": path, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}

    config: dict[str, object] = {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{platform.alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            static("prometheus", platform.prometheus_port),
            static("alertmanager", platform.alertmanager_port),
            static("minio", platform.minio_port, "/minio/v2/metrics/cluster"),
            {"job_name": "k2", "file_sd_configs": [{"files": [targets], "refresh_interval": INTERVAL}]},
        ],
    }
    if rules:
        config["rule_files"] = [str(path) for path in rules]
    return config


def alertmanager_config() -> dict[str, object]:
    """The configuration K2 gives the platform's Alertmanager: every alert to one receiver that
    notifies nobody, so alerts are seen in its HTTP API (``/api/v2/alerts``).
    """
    return {
        "route": {"receiver": "k2", "group_by": ["alertname"], "group_wait": "10s", "repeat_interval": "1h"},
        "receivers": [{"name": "k2"}],
    }


class _Server(ABC):
    """A server of the Prometheus project: unpacked from a Debian package, configured by K2, ready
    when ``/-/ready`` answers, reloaded with ``POST /-/reload``.
    """

    name: str
    title: str
    package: DebianPackage
    _setting: str
    _status_path: str

    def __init__(self, settings: K2Settings, port: int) -> None:
        self._settings = settings
        self._port = port
        self._home = settings.platform.home
        self._timeout = settings.platform.start_timeout_s
        self._root = settings.platform_data / self.name
        self._process = ServerProcess(self.name, self._root)

    @property
    def url(self) -> str:
        """Base URL of the server's web UI and HTTP API."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def _config(self) -> Path:
        return self._root / f"{self.name}.yml"

    def _binary(self, name: str) -> Path:
        return self.package.root(self._home) / "usr" / "bin" / name

    @abstractmethod
    def _configuration(self) -> dict[str, object]:
        """What K2 writes into the configuration file."""

    @abstractmethod
    def _argv(self) -> list[str]:
        """The server's command line."""

    def installed(self) -> bool:
        """Whether the package is unpacked in the shared software home."""
        return self.package.installed(self._home)

    def install(self) -> None:
        """Download and unpack Debian's package when missing."""
        self.package.install(self._home)

    def start(self) -> None:
        """Write the configuration, then start the server, or have the running one reload it."""
        self.install()
        self._root.mkdir(parents=True, exist_ok=True)
        running = self._process.pid() is not None
        if not running:
            ensure_free(self._port, self.title, self._setting)
        self._config.write_text(json.dumps(self._configuration(), indent=2) + "\n")
        if running:
            self._reload()
        else:
            self._process.start(self._argv(), cwd=self._root)
        wait_until(self._ready, self.title, self._timeout, self._process)

    def _reload(self) -> None:
        try:
            response = httpx.post(f"{self.url}/-/reload", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise ConfigurationError(f"{self.title}: reload failed: {error}") from error
        if response.status_code != httpx.codes.OK:
            raise ConfigurationError(
                f"{self.title} refused its new configuration {self._config}: {response.text.strip()}"
            )

    def _get(self, path: str) -> httpx.Response | None:
        return http_get(f"{self.url}{path}", HEALTH_TIMEOUT_S)

    def _ready(self) -> bool:
        response = self._get("/-/ready")
        return response is not None and response.status_code == httpx.codes.OK

    def _detail(self) -> str:
        """What ``k2 platform status`` says of the healthy server: :meth:`_describe` of the answer
        at ``_status_path``.
        """
        response = self._get(self._status_path)
        if response is None or response.status_code != httpx.codes.OK:
            return ""
        return self._describe(response.json())

    @abstractmethod
    def _describe(self, answer: Any) -> str:
        """The status line of the server's JSON ``answer`` at ``_status_path``."""

    def stop(self) -> None:
        """Stop the server with SIGTERM (it flushes its data); the data stays."""
        self._process.stop()

    def health(self) -> Health:
        """Whether the server runs and reports itself ready."""
        running = self._process.pid() is not None
        healthy = running and self._ready()
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.url,
            detail=self._detail() if healthy else self._process.log_tail(3),
            version=f"{self.title} {self.package.version} (Debian)",
        )


class Prometheus(_Server):
    """Prometheus on loopback: scrapes the platform and K2's registered processes, evaluates K2's rules."""

    name = "prometheus"
    title = "Prometheus"
    package = PROMETHEUS
    _setting = "K2_PLATFORM_PROMETHEUS_PORT"
    _status_path = "/api/v1/targets?state=active"

    def __init__(self, settings: K2Settings) -> None:
        super().__init__(settings, settings.platform.prometheus_port)

    def _configuration(self) -> dict[str, object]:
        return prometheus_config(self._settings, rule_files())

    def _argv(self) -> list[str]:
        return [
            str(self._binary("prometheus")),
            f"--config.file={self._config}",
            f"--storage.tsdb.path={self._root / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{self._port}",
            "--web.enable-lifecycle",
            f"--rules.alert.resend-delay={RESEND_DELAY}",
        ]

    def start(self) -> None:
        """Forget the registrations of processes that are gone, then start or reload Prometheus."""
        targets_dir(self._settings).mkdir(parents=True, exist_ok=True)
        prune(self._settings)
        super().start()

    def _describe(self, answer: Any) -> str:
        targets = answer["data"]["activeTargets"]
        up = sum(1 for target in targets if target["health"] == "up")
        return f"{up} of {len(targets)} targets up, {len(rule_files())} rule files"


class Alertmanager(_Server):
    """Alertmanager on loopback, without cluster gossip: receives the platform Prometheus's alerts."""

    name = "alertmanager"
    title = "Alertmanager"
    package = ALERTMANAGER
    _setting = "K2_PLATFORM_ALERTMANAGER_PORT"
    _status_path = "/api/v2/alerts?active=true"

    def __init__(self, settings: K2Settings) -> None:
        super().__init__(settings, settings.platform.alertmanager_port)

    def installed(self) -> bool:
        """Whether the package is unpacked and its templates are where the binary reads them."""
        return super().installed() and not self._missing_templates()

    def install(self) -> None:
        """Unpack Debian's package when missing, and copy its notification templates to
        ``/usr/share/prometheus/alertmanager`` (the only place Debian's build reads them from).

        Raises:
            ConfigurationError: The templates are missing and K2 is not root (the command is named).
        """
        super().install()
        missing = self._missing_templates()
        if not missing:
            return
        if os.geteuid() != 0:
            raise ConfigurationError(
                f"Debian's Alertmanager reads its templates from {ALERTMANAGER_TEMPLATES}; run: "
                f"sudo install -D -m 0644 -t {ALERTMANAGER_TEMPLATES} {' '.join(map(str, missing))}"
            )
        with installing(self._home, "alertmanager-templates"):
            ALERTMANAGER_TEMPLATES.mkdir(parents=True, exist_ok=True)
            for template in missing:
                scratch = scratch_for(ALERTMANAGER_TEMPLATES / template.name)
                shutil.copyfile(template, scratch)
                scratch.replace(ALERTMANAGER_TEMPLATES / template.name)

    def _missing_templates(self) -> list[Path]:
        """The package's templates not yet at :data:`ALERTMANAGER_TEMPLATES`."""
        unpacked = self.package.root(self._home) / ALERTMANAGER_TEMPLATES.relative_to("/")
        return [t for t in sorted(unpacked.glob("*.tmpl")) if not (ALERTMANAGER_TEMPLATES / t.name).is_file()]

    def _configuration(self) -> dict[str, object]:
        return alertmanager_config()

    def _argv(self) -> list[str]:
        return [
            str(self._binary("prometheus-alertmanager")),
            f"--config.file={self._config}",
            f"--storage.path={self._root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self._port}",
            "--cluster.listen-address=",
        ]

    def _describe(self, answer: Any) -> str:
        return f"{len(answer)} active alerts"
