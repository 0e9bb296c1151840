"""PostgreSQL from Debian's packages: the Iceberg catalog's database and the registry's storage."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import stat
from pathlib import Path

import psycopg

from k2.errors import ConfigurationError
from k2.platform.process import ServerProcess, ensure_free, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing
from k2.settings import K2Settings

#: The role K2 connects as; trusted on loopback, so no password.
USER = "k2"
#: Databases K2 creates: the Iceberg catalog's and the schema registry's.
DATABASES = ("k2", "registry")
_SERVER_USER = "postgres"
#: Where clusters go when the postgres user cannot reach the platform data directory.
CLUSTERS = Path("/var/lib/postgresql/k2")


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    return candidates[-1].parent if candidates else None


def _version() -> str:
    """The installed PostgreSQL's major version (Debian's package; not pinned by K2)."""
    bin_dir = _bin_dir()
    return f"PostgreSQL {bin_dir.parent.name} (Debian)" if bin_dir is not None else ""


class Postgres:
    """One PostgreSQL cluster in the platform's data directory, listening on loopback only."""

    name = "postgres"

    def __init__(self, settings: K2Settings) -> None:
        self._home = settings.platform.home
        self._port = settings.platform.postgres_port
        self._timeout = settings.platform.start_timeout_s
        self._root = settings.platform_data / "postgres"
        self._process = ServerProcess("postgres", self._root)

    @property
    def _data(self) -> Path:
        return self._root / "data"

    def url(self, database: str = "k2", driver: str = "postgresql") -> str:
        """Connection URL of ``database`` (``driver`` ``postgresql+psycopg`` for SQLAlchemy)."""
        return f"{driver}://{USER}@127.0.0.1:{self._port}/{database}"

    def installed(self) -> bool:
        """Whether a PostgreSQL server is installed."""
        return _bin_dir() is not None

    def install(self) -> None:
        """Install Debian's postgresql package when no server is present."""
        if self.installed():
            return
        if os.geteuid() != 0:
            raise ConfigurationError("PostgreSQL is not installed; run: sudo apt-get install -y postgresql")
        with installing(self._home, "postgresql"):
            if self.installed():
                return  # another checkout installed it while this one waited
            env = {"DEBIAN_FRONTEND": "noninteractive"}
            run(["apt-get", "update", "-q"], "apt-get update", env=env)
            run(["apt-get", "install", "-y", "-q", "postgresql"], "apt-get install postgresql", env=env)

    def _server_user(self) -> str | None:
        """PostgreSQL refuses to run as root: run it as ``postgres`` when K2 is root."""
        return _SERVER_USER if os.geteuid() == 0 else None

    def _initialise(self, bin_dir: Path) -> None:
        """Initdb a fresh cluster at ``<platform data>/postgres/data``.

        When K2 runs as root, the server runs as ``postgres``, which must be able to pass every
        directory above its data. Where it cannot (a clone under ``/root``), the cluster lives
        under ``/var/lib/postgresql/k2/`` and ``data`` is a symbolic link to it.
        """
        if (self._data / "PG_VERSION").exists():
            return
        self._root.mkdir(parents=True, exist_ok=True)
        user = self._server_user()
        home = self._root
        if user is not None and any(not d.stat().st_mode & stat.S_IXOTH for d in self._root.parents):
            home = CLUSTERS / hashlib.sha256(str(self._root).encode()).hexdigest()[:16]
            home.mkdir(parents=True, exist_ok=True)
        fresh = home / "data.init"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        if user is not None:
            owner = pwd.getpwnam(user)
            for path in (home, fresh):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(fresh),
                "-A",
                "trust",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
            "initdb",
            user=user,
        )
        if home == self._root:
            fresh.rename(self._data)
        else:
            shutil.rmtree(home / "data", ignore_errors=True)
            fresh.rename(home / "data")
            self._data.unlink(missing_ok=True)
            self._data.symlink_to(home / "data")

    def start(self) -> None:
        """Initialise the cluster on first start, start it, and create K2's databases."""
        self.install()
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise ConfigurationError("PostgreSQL is not installed")
        self._initialise(bin_dir)
        if self._process.pid() is None:
            ensure_free(self._port, "PostgreSQL", "K2_PLATFORM_POSTGRES_PORT")
        self._process.start(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self._data.resolve()),
                "-p",
                str(self._port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ],
            user=self._server_user(),
        )
        wait_until(self._accepts, "PostgreSQL", self._timeout, self._process)
        self._create_databases()

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    def _create_databases(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("select datname from pg_database")}
            for database in DATABASES:
                if database not in existing:
                    conn.execute(f'create database "{database}"')

    def stop(self) -> None:
        """Stop with PostgreSQL's fast shutdown (SIGINT): open sessions are ended, data is safe."""
        self._process.stop(timeout_s=60.0, sig=signal.SIGINT)

    def health(self) -> Health:
        """Whether the server runs and answers a query."""
        running = self._process.pid() is not None
        healthy = running and self._accepts()
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=f"127.0.0.1:{self._port}",
            detail=f"databases {', '.join(DATABASES)}" if healthy else self._process.log_tail(3),
            version=_version(),
        )
