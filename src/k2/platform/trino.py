"""Trino, run from its Maven Central server tarball: a distributed SQL engine over K2's tables.

Opt-in (``k2 platform up --with trino`` or ``K2_PLATFORM_TRINO=true``). ``install`` downloads
``io.trino:trino-server`` (about 820 MB), checks its SHA-1 and unpacks it into
``<home>/trino-<version>/``. ``start`` writes ``etc/`` into the run directory
(``<platform data>/trino``): one node that is coordinator and worker, its HTTP server and its
internal address on loopback, memory fit for a small machine, and an Iceberg catalog on the
**same** PostgreSQL JDBC catalog and MinIO warehouse K2 writes (pyiceberg's SQL catalog tables are
the Iceberg JDBC catalog's, schema V1). The catalog has the lake's catalog name, so K2's tables
are ``<catalog>.<namespace>.trades`` in Trino.

Trino 476 needs Java 24 or newer: K2 runs it with the newest such JDK under ``/usr/lib/jvm``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from k2.errors import ConfigurationError
from k2.platform.apicurio import find_java
from k2.platform.process import ServerProcess, ensure_free, http_get, port_open, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing, scratch_for
from k2.settings import K2Settings, Profile

#: The Trino release K2 installs.
VERSION = "476"
#: Where Maven Central serves the server tarball and its checksum.
TARBALL_URL = f"https://repo1.maven.org/maven2/io/trino/trino-server/{VERSION}/trino-server-{VERSION}.tar.gz"
#: Oldest Java Trino 476 runs on.
MIN_JAVA = 24
#: Java options: a 4 GB heap fits beside the rest of the platform on a 24 GB, 2-core machine.
JVM_OPTIONS = (
    "-server",
    "-Xmx4G",
    "-XX:InitialRAMPercentage=10",
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
)
#: Memory one query may use in all, and on the one node.
QUERY_MAX_MEMORY = "2GB"
QUERY_MAX_MEMORY_PER_NODE = "1GB"
#: Shortest snapshot retention Trino's ``expire_snapshots`` may ask for (Trino's own default).
EXPIRE_MIN_RETENTION = "7d"
#: Seconds a graceful shutdown may take before Trino is killed.
STOP_TIMEOUT_S = 30.0
#: Seconds one HTTP request of a health check may take.
HEALTH_TIMEOUT_S = 3.0
#: Bytes read per chunk of the download.
CHUNK_BYTES = 1 << 20


class Trino:
    """One Trino node (coordinator and worker) on loopback, run from ``<platform data>/trino``."""

    name = "trino"

    def __init__(self, settings: K2Settings, expire_min_retention: str = EXPIRE_MIN_RETENTION) -> None:
        """Describe the Trino of ``settings``.

        Args:
            settings: K2's settings; the platform's home, data dir, Trino port and start timeout,
                and the catalog and warehouse K2 uses under the platform profile.
            expire_min_retention: the shortest ``retention_threshold`` Trino's ``expire_snapshots``
                accepts (a Trino duration, e.g. ``7d``).
        """
        platform = settings.platform
        self._port = platform.trino_port
        self._timeout = platform.start_timeout_s
        self._home = platform.home
        self._install_dir = platform.home / f"trino-server-{VERSION}"
        self._root = settings.platform_data / "trino"
        self._process = ServerProcess("trino", self._root)
        self._lake = (
            settings if settings.profile is Profile.PLATFORM else settings.on_profile(Profile.PLATFORM)
        )
        self.catalog = self._lake.lake.catalog_name
        self._expire_min_retention = expire_min_retention

    @property
    def url(self) -> str:
        """The coordinator's base URL."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def _launcher(self) -> Path:
        return self._install_dir / "bin" / "launcher"

    @property
    def _etc(self) -> Path:
        return self._root / "etc"

    def running(self) -> bool:
        """Whether this data directory's Trino process runs."""
        return self._process.pid() is not None

    def installed(self) -> bool:
        """Whether the server is unpacked (its folder appears only once complete)."""
        return self._launcher.is_file()

    def install(self) -> None:
        """Download and unpack the server when missing, under the install lock.

        Raises:
            ConfigurationError: the download fails or its checksum does not match.
        """
        if self.installed():
            return
        with installing(self._home, self._install_dir.name):
            if self.installed():
                return  # another checkout installed it while this one waited
            scratch = scratch_for(self._install_dir)
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            try:
                tarball = scratch / "trino-server.tar.gz"
                _download(TARBALL_URL, tarball)
                run(["tar", "-xzf", str(tarball), "-C", str(scratch)], f"unpack Trino {VERSION}")
                (scratch / f"trino-server-{VERSION}").rename(self._install_dir)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def catalog_properties(self) -> dict[str, str]:
        """The Iceberg catalog on K2's JDBC catalog and warehouse, as pyiceberg opens them."""
        lake = self._lake.lake
        uri = make_url(self._lake.catalog_uri)
        if not uri.drivername.startswith("postgresql") or uri.host is None:
            raise ConfigurationError(
                f"Trino reads K2's tables through a PostgreSQL catalog; the catalog is {uri.drivername}"
            )
        properties = {
            "connector.name": "iceberg",
            "iceberg.catalog.type": "jdbc",
            "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
            "iceberg.jdbc-catalog.connection-url": (
                f"jdbc:postgresql://{uri.host}:{uri.port or 5432}/{uri.database}"
            ),
            "iceberg.jdbc-catalog.connection-user": uri.username or "",
            "iceberg.jdbc-catalog.catalog-name": lake.catalog_name,
            "iceberg.jdbc-catalog.default-warehouse-dir": self._lake.warehouse,
            "iceberg.expire-snapshots.min-retention": self._expire_min_retention,
            "fs.native-s3.enabled": "true",
            "s3.endpoint": lake.s3_endpoint or "",
            "s3.region": lake.s3_region,
            "s3.path-style-access": "true",
            "s3.aws-access-key": lake.s3_access_key_id or "",
            "s3.aws-secret-key": lake.s3_secret_access_key.get_secret_value()
            if lake.s3_secret_access_key
            else "",
        }
        if uri.password:
            properties["iceberg.jdbc-catalog.connection-password"] = uri.password
        return properties

    def _write_config(self) -> None:
        """Write ``etc/``: node, JVM, server and catalog configuration (overwritten at every start)."""
        catalogs = self._etc / "catalog"
        catalogs.mkdir(parents=True, exist_ok=True)
        for stale in catalogs.glob("*.properties"):
            stale.unlink()
        node = {
            "node.environment": "k2",
            "node.id": "k2-trino",
            "node.data-dir": str(self._root / "data"),
            "node.internal-address": "127.0.0.1",
            # Airlift binds the HTTP server to the node's bind address (all interfaces by default).
            "node.bind-ip": "127.0.0.1",
        }
        server = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": str(self._port),
            "discovery.uri": self.url,
            "query.max-memory": QUERY_MAX_MEMORY,
            "query.max-memory-per-node": QUERY_MAX_MEMORY_PER_NODE,
            "catalog.config-dir": str(catalogs),
            "plugin.dir": str(self._install_dir / "plugin"),
        }
        _write_properties(self._etc / "node.properties", node)
        _write_properties(self._etc / "config.properties", server)
        _write_properties(catalogs / f"{self.catalog}.properties", self.catalog_properties())
        (self._etc / "jvm.config").write_text("\n".join(JVM_OPTIONS) + "\n")
        (self._etc / "log.properties").write_text("io.trino=WARN\n")

    def start(self) -> None:
        """Install when missing, start Trino, and wait until it has finished starting.

        Raises:
            ConfigurationError: The port is taken by another process, or Trino exited while starting.
            RetryableError: Trino did not finish starting within the start timeout.
        """
        self.install()
        if not self.running():
            ensure_free(self._port, "Trino", "K2_PLATFORM_TRINO_PORT")
            self._write_config()
            java = find_java(MIN_JAVA)
            self._process.start(
                [
                    str(self._launcher),
                    "run",
                    f"--etc-dir={self._etc}",
                    f"--data-dir={self._root / 'data'}",
                ],
                env={"JAVA_HOME": str(java.resolve().parent.parent)},
                cwd=self._root,
            )
        wait_until(self._ready, "Trino", self._timeout, self._process)

    def _info(self) -> dict[str, object] | None:
        """``/v1/info`` of the coordinator, or None when it does not answer."""
        if not port_open(self._port):
            return None
        response = http_get(f"{self.url}/v1/info", HEALTH_TIMEOUT_S)
        if response is None or response.status_code != httpx.codes.OK:
            return None
        try:
            info: dict[str, object] = response.json()
        except ValueError:
            return None
        return info

    def _ready(self) -> bool:
        info = self._info()
        return info is not None and info.get("starting") is False

    def stop(self) -> None:
        """Stop Trino with SIGTERM (the launcher's JVM shuts down); nothing of it needs keeping."""
        self._process.stop(timeout_s=STOP_TIMEOUT_S)

    def health(self) -> Health:
        """Whether Trino runs and says it has finished starting."""
        running = self.running()
        info = self._info() if running else None
        healthy = info is not None and info.get("starting") is False
        if healthy:
            detail = f"catalog {self.catalog} (Iceberg on K2's catalog and warehouse)"
        elif running:
            detail = "starting" if info is not None else self._process.log_tail(3)
        else:
            detail = "not running"
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.url,
            detail=detail,
            version=f"Trino {VERSION}",
        )


def _download(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` and check it against the SHA-1 Maven Central publishes.

    Raises:
        ConfigurationError: the download fails or the checksum does not match.
    """
    digest = hashlib.sha1()  # noqa: S324 - Maven Central's published checksum, not a security check
    try:
        expected = httpx.get(f"{url}.sha1", timeout=30.0, follow_redirects=True)
        expected.raise_for_status()
        with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
            response.raise_for_status()
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
    except httpx.HTTPError as error:
        raise ConfigurationError(f"downloading {url} failed: {error}") from None
    want = expected.text.split()[0].strip().lower()
    if digest.hexdigest() != want:
        raise ConfigurationError(f"{url}: SHA-1 {digest.hexdigest()} does not match Maven Central's {want}")


def _write_properties(path: Path, properties: dict[str, str]) -> None:
    lines = [
        "# Written by K2 at every start; edits are overwritten.",
        *(f"{k}={v}" for k, v in properties.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
