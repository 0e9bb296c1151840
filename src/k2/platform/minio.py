"""MinIO, built from source with ``go install``: the S3 store that holds the Iceberg warehouse."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request

from pyarrow import fs

from k2.errors import ConfigurationError
from k2.platform.process import ServerProcess, ensure_free, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing, scratch_for
from k2.settings import K2Settings

#: MinIO's Go module, built with ``go install`` (the brief's source of MinIO), at a pinned version
#: so every machine builds the same server: the commit of 2026-02-12 the module proxy served as
#: ``latest`` when K2 pinned it.
MODULE = "github.com/minio/minio"
VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


class Minio:
    """One single-drive MinIO server on loopback, with K2's bucket created."""

    name = "minio"

    def __init__(self, settings: K2Settings) -> None:
        platform = settings.platform
        self._port = platform.minio_port
        self._console_port = platform.minio_console_port
        self._user = platform.minio_root_user
        self._password = platform.minio_root_password.get_secret_value()
        self._bucket = platform.s3_bucket
        self._timeout = platform.start_timeout_s
        self._home = platform.home
        self._binary = platform.home / f"minio-{VERSION}" / "minio"
        self._root = settings.platform_data / "minio"
        self._process = ServerProcess("minio", self._root)

    @property
    def endpoint(self) -> str:
        """The S3 API's URL."""
        return f"http://127.0.0.1:{self._port}"

    def installed(self) -> bool:
        """Whether the MinIO binary has been built."""
        return self._binary.is_file()

    def install(self) -> None:
        """Build MinIO with ``go install`` (several minutes the first time; Go caches the build)."""
        if self.installed():
            return
        go = shutil.which("go")
        if go is None:
            raise ConfigurationError(f"Go is needed to build MinIO (go install {MODULE}@{VERSION})")
        with installing(self._home, f"minio-{VERSION}"):
            if self.installed():
                return  # another checkout installed it while this one waited
            scratch = scratch_for(self._binary.parent)
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                run(
                    [go, "install", f"{MODULE}@{VERSION}"],
                    f"go install minio {VERSION}",
                    env={"GOBIN": str(scratch), "CGO_ENABLED": "0"},
                )
                scratch.rename(self._binary.parent)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def start(self) -> None:
        """Start MinIO on its data folder, wait for it, and create the warehouse bucket."""
        self.install()
        (self._root / "data").mkdir(parents=True, exist_ok=True)
        if self._process.pid() is None:
            ensure_free(self._port, "MinIO", "K2_PLATFORM_MINIO_PORT")
            ensure_free(self._console_port, "MinIO's console", "K2_PLATFORM_MINIO_CONSOLE_PORT")
        self._process.start(
            [
                str(self._binary),
                "server",
                str(self._root / "data"),
                "--address",
                f"127.0.0.1:{self._port}",
                "--console-address",
                f"127.0.0.1:{self._console_port}",
                "--quiet",
            ],
            env={
                "MINIO_ROOT_USER": self._user,
                "MINIO_ROOT_PASSWORD": self._password,
                "MINIO_UPDATE": "off",
                "MINIO_CALLHOME_ENABLE": "off",
                "MINIO_PROMETHEUS_AUTH_TYPE": "public",  # the platform's Prometheus scrapes it on loopback
                "HOME": str(self._root),
            },
        )
        wait_until(self._live, "MinIO", self._timeout, self._process)
        self.filesystem().create_dir(self._bucket)

    def filesystem(self) -> fs.S3FileSystem:
        """A pyarrow S3 file system on this MinIO."""
        return fs.S3FileSystem(
            access_key=self._user,
            secret_key=self._password,
            endpoint_override=self.endpoint,
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )

    def _live(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/minio/health/live", timeout=2) as response:  # noqa: S310 - loopback URL built by K2
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop MinIO; its data stays."""
        self._process.stop()

    def health(self) -> Health:
        """Whether MinIO runs and reports itself live."""
        running = self._process.pid() is not None
        healthy = running and self._live()
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.endpoint,
            detail=f"bucket {self._bucket}" if healthy else self._process.log_tail(3),
            version=f"MinIO {VERSION}",
        )
