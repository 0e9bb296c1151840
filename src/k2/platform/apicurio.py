"""Apicurio Registry 3, run from Maven Central: the schema registry of the streaming pipeline.

K2's producers and consumers speak Confluent's Schema Registry API; Apicurio serves it at
``/apis/ccompat/v7`` (``settings.kafka.schema_registry_url``). ``install`` lays Apicurio's own
Quarkus runner (the ``apicurio-registry-app`` ``all`` tar.gz published with every release) into
``<home>/registry-<version>/`` with Maven, from the pom that ships with K2. ``start`` writes
``config/application.properties`` into the run directory and runs ``quarkus-run.jar`` from there.

Schemas are stored in the platform's PostgreSQL (database ``registry``); ``storage="h2"`` keeps them in
an H2 file in the run directory instead, for a registry without PostgreSQL. Compatibility defaults to
BACKWARD for every subject (Apicurio's default global rule); ``PUT /config`` changes it.

The runner is compiled for Java 21: K2 uses ``java`` from ``PATH`` when it is 21 or newer, and
otherwise the newest JDK 21+ under ``/usr/lib/jvm``.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import httpx

from k2.errors import ConfigurationError
from k2.platform.postgres import USER as POSTGRES_USER
from k2.platform.process import ServerProcess, ensure_free, http_get, port_open, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing, scratch_for
from k2.settings import K2Settings

#: Oldest Java the registry runs on (its classes are compiled for release 21).
MIN_JAVA = 21
#: Java options of the registry: a small heap is plenty for a schema registry.
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
#: Default compatibility of every subject that has no setting of its own.
DEFAULT_COMPATIBILITY = "BACKWARD"
#: PostgreSQL database the registry stores in (created by k2.platform.postgres).
DATABASE = "registry"
#: Seconds a clean shutdown may take before the registry is killed.
STOP_TIMEOUT_S = 30.0
#: Seconds one HTTP request of a health check may take.
HEALTH_TIMEOUT_S = 3.0

Storage = Literal["postgresql", "h2"]

_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_JVM_DIR = Path("/usr/lib/jvm")
_JAVA_VERSION = re.compile(r'^JAVA_VERSION="(\d+)', re.MULTILINE)


def _pom() -> Traversable:
    return resources.files("k2.platform").joinpath("maven", "registry", "pom.xml")


def apicurio_version() -> str:
    """The Apicurio Registry version K2 installs: the ``apicurio.version`` property of its packaged pom."""
    root = ET.fromstring(_pom().read_text(encoding="utf-8"))  # noqa: S314 - K2's own packaged pom
    version = root.findtext("m:properties/m:apicurio.version", namespaces=_POM_NS)
    if not version:
        raise ConfigurationError("the packaged registry pom names no apicurio.version")
    return version.strip()


def _java_major(java: Path) -> int | None:
    """The major version of the JDK or JRE that ``java`` belongs to, from its ``release`` file."""
    try:
        release = (java.resolve().parent.parent / "release").read_text(errors="replace")
    except OSError:
        return None
    match = _JAVA_VERSION.search(release)
    return int(match.group(1)) if match else None


def find_java(minimum: int = MIN_JAVA) -> Path:
    """``java`` from ``PATH`` when it is new enough, else the newest suitable JDK under /usr/lib/jvm.

    Raises:
        ConfigurationError: No Java of at least ``minimum`` is installed.
    """
    on_path = shutil.which("java")
    if on_path is not None:
        major = _java_major(Path(on_path))
        if major is not None and major >= minimum:
            return Path(on_path)
    found: list[tuple[int, Path]] = []
    for java in _JVM_DIR.glob("*/bin/java"):
        major = _java_major(java)
        if major is not None and major >= minimum:
            found.append((major, java))
    if not found:
        raise ConfigurationError(
            f"Apicurio Registry needs Java {minimum} or newer (Debian 12 ships only 17): install a JDK "
            f"{minimum}+ under {_JVM_DIR} or put its bin directory first on PATH"
        )
    return max(found)[1]


class ApicurioRegistry:
    """Apicurio Registry on loopback with its Confluent-compatible API; data in PostgreSQL or H2."""

    name = "registry"

    def __init__(self, settings: K2Settings, storage: Storage = "postgresql") -> None:
        """Describe the registry of ``settings``.

        Args:
            settings: K2's settings; the platform's home, data dir, ports and start timeout are used.
            storage: ``postgresql`` (the platform's database ``registry``) or ``h2`` (a file in the
                registry's run directory).
        """
        platform = settings.platform
        self._port = platform.registry_port
        self._postgres_port = platform.postgres_port
        self._timeout = platform.start_timeout_s
        self.storage: Storage = storage
        self.version = apicurio_version()
        self._home = platform.home
        self._install_dir = platform.home / f"registry-{self.version}"
        self._root = settings.platform_data / "registry"
        self._process = ServerProcess("registry", self._root)

    @property
    def url(self) -> str:
        """Base URL of the Confluent-compatible API."""
        return f"http://127.0.0.1:{self._port}/apis/ccompat/v7"

    @property
    def _runner(self) -> Path:
        return self._install_dir / "quarkus-run.jar"

    @property
    def _config(self) -> Path:
        return self._root / "config" / "application.properties"

    def installed(self) -> bool:
        """Whether the registry's Quarkus runner is in place."""
        return self._runner.is_file()

    def install(self) -> None:
        """Lay out the registry's Quarkus runner from Maven Central when missing.

        Maven works in a scratch copy of the pom next to the install directory; its output is renamed
        into place only once Maven succeeded, so an interrupted install is simply redone.
        """
        if self.installed():
            return
        with installing(self._home, f"registry-{self.version}"):
            if not self.installed():  # else another checkout installed it while this one waited
                self._build()

    def _build(self) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigurationError("Maven (mvn) is needed to fetch Apicurio Registry from Maven Central")
        self._install_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch = scratch_for(self._install_dir)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self._install_dir, ignore_errors=True)
        scratch.mkdir()
        try:
            pom = scratch / "pom.xml"
            pom.write_text(_pom().read_text(encoding="utf-8"), encoding="utf-8")
            run(
                [mvn, "-B", "-q", "-f", str(pom), f"-Dapicurio.version={self.version}", "package"],
                f"mvn: fetch Apicurio Registry {self.version}",
                cwd=scratch,
            )
            built = scratch / "target" / "quarkus-app"
            if not (built / "quarkus-run.jar").is_file():
                raise ConfigurationError(f"mvn: Apicurio Registry {self.version} has no quarkus-run.jar")
            built.rename(self._install_dir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _properties(self) -> dict[str, str]:
        """The registry's runtime configuration (Quarkus and ``apicurio.*`` properties)."""
        scratch = self._root / "tmp"
        properties = {
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": str(self._port),
            # Health and metrics live on a separate management port (9000 by default, MinIO's port):
            # loopback and a free port; K2 checks the registry through its API instead.
            "quarkus.management.host": "127.0.0.1",
            "quarkus.management.port": "0",
            "quarkus.http.access-log.enabled": "false",
            "quarkus.log.console.format": "%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{3.}] (%t) %s%e%n",
            "apicurio.rules.global.compatibility": DEFAULT_COMPATIBILITY,
            # Confluent clients delete subjects and versions (soft, then permanent); allow it.
            "apicurio.rest.deletion.group.enabled": "true",
            "apicurio.rest.deletion.artifact.enabled": "true",
            "apicurio.rest.deletion.artifact-version.enabled": "true",
            "apicurio.storage.snapshot.location": str(scratch),
            "apicurio.import.work-dir": str(scratch),
            "apicurio.storage.kind": "sql",
            "apicurio.datasource.jdbc.initial-size": "2",
            "apicurio.datasource.jdbc.min-size": "2",
            "apicurio.datasource.jdbc.max-size": "20",
        }
        if self.storage == "postgresql":
            properties |= {
                "apicurio.storage.sql.kind": "postgresql",
                "apicurio.datasource.url": f"jdbc:postgresql://127.0.0.1:{self._postgres_port}/{DATABASE}",
                "apicurio.datasource.username": POSTGRES_USER,
                # PostgreSQL trusts loopback; Agroal still wants a password.
                "apicurio.datasource.password": POSTGRES_USER,
            }
        else:
            properties |= {
                "apicurio.storage.sql.kind": "h2",
                "apicurio.datasource.url": f"jdbc:h2:file:{self._root / 'h2' / 'registry'}",
                "apicurio.datasource.username": "sa",
                "apicurio.datasource.password": "sa",
            }
        return properties

    def _write_config(self) -> None:
        """Write ``config/application.properties``, which Quarkus reads from the working directory."""
        self._config.parent.mkdir(parents=True, exist_ok=True)
        (self._root / "tmp").mkdir(exist_ok=True)
        lines = [
            "# Written by K2 at every start; edits are overwritten.",
            *(f"{key}={_escape(value)}" for key, value in self._properties().items()),
        ]
        self._config.write_text("\n".join(lines) + "\n")
        self._config.chmod(0o600)

    def start(self) -> None:
        """Install when missing, start the registry, and wait until its Confluent API answers.

        Raises:
            ConfigurationError: The port is taken by another process, PostgreSQL does not run, or the
                registry exited while starting.
            RetryableError: The registry did not answer within the start timeout.
        """
        self.install()
        if self._process.pid() is None:
            ensure_free(self._port, "The schema registry", "K2_PLATFORM_REGISTRY_PORT")
            if self.storage == "postgresql" and not port_open(self._postgres_port):
                raise ConfigurationError(
                    f"the registry stores in PostgreSQL, which does not answer on 127.0.0.1:"
                    f"{self._postgres_port}; start PostgreSQL first"
                )
            self._write_config()
            self._process.start(
                [str(find_java()), *JVM_OPTIONS, "-jar", str(self._runner)],
                cwd=self._root,
            )
        wait_until(self._ready, "Schema registry", self._timeout, self._process)

    def _get(self, path: str) -> httpx.Response | None:
        return http_get(f"{self.url}{path}", HEALTH_TIMEOUT_S)

    def _ready(self) -> bool:
        if not port_open(self._port):
            return False
        response = self._get("/subjects")
        return response is not None and response.status_code == httpx.codes.OK

    def _summary(self, subjects: httpx.Response) -> str:
        """Subject count and global compatibility, for ``health``'s detail."""
        config = self._get("/config")
        try:
            count = len(subjects.json())
            level = config.json().get("compatibilityLevel", "?") if config is not None else "?"
        except ValueError:
            return "unexpected answer from the registry"
        return f"{count} subject(s), compatibility {level}"

    def stop(self) -> None:
        """Stop the registry with SIGTERM (Quarkus shuts down cleanly); its schemas stay."""
        self._process.stop(timeout_s=STOP_TIMEOUT_S)

    def health(self) -> Health:
        """Whether the registry runs and its Confluent API lists subjects."""
        running = self._process.pid() is not None
        healthy = False
        detail = "not running"
        if running:
            subjects = self._get("/subjects") if port_open(self._port) else None
            if subjects is not None and subjects.status_code == httpx.codes.OK:
                healthy = True
                detail = (
                    f"Apicurio Registry {self.version}, {self.storage} storage, {self._summary(subjects)}"
                )
            else:
                detail = self._process.log_tail(3)
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.url,
            detail=detail,
            version=f"Apicurio Registry {self.version}",
        )


def _escape(value: str) -> str:
    """A value for a Java properties file: backslashes doubled (paths, patterns stay literal)."""
    return value.replace("\\", "\\\\")
