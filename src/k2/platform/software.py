"""The shared software cache (``K2_PLATFORM_HOME``): installs that two checkouts on one machine
may run at the same time.

Each service's install holds a lock of its own under the cache while it checks, builds and
renames its software into place, so a second ``k2 platform up`` waits for the first install to
finish and then finds the software there, instead of deleting it under the first one's feet.
Builds run in a scratch directory of their own process, renamed into place once complete.
Software that Debian packages (Prometheus, Alertmanager) is unpacked from its ``.deb`` here too.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from k2.errors import ConfigurationError
from k2.platform.process import run


@contextmanager
def installing(home: Path, name: str) -> Iterator[None]:
    """Hold the machine-wide install lock of ``name`` under ``home`` (blocking until it is free)."""
    locks = home / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def scratch_for(target: Path) -> Path:
    """A scratch path beside ``target`` that belongs to this process."""
    return target.with_name(f"{target.name}.partial-{os.getpid()}")


@dataclass(frozen=True)
class DebianPackage:
    """A package of Debian's archive unpacked (never installed) into the shared software home.

    ``apt-get install`` would run the package's maintainer scripts, which start a system daemon on
    the default ports that two checkouts on one machine must not share; unpacking the ``.deb`` with
    ``dpkg-deb -x`` gives the same files under ``<home>/<name>-<version>/`` and nothing else.
    """

    name: str
    version: str

    def root(self, home: Path) -> Path:
        """Where the package's files are unpacked: its ``usr/bin`` is ``root / "usr" / "bin"``."""
        return home / f"{self.name}-{self.version}"

    def installed(self, home: Path) -> bool:
        """Whether the package is unpacked (the folder appears only once complete)."""
        return self.root(home).is_dir()

    def install(self, home: Path) -> None:
        """Download the package with ``apt-get download`` and unpack it, unless already there.

        Raises:
            ConfigurationError: apt cannot download this version (the command to run is named).
        """
        if self.installed(home):
            return
        target = self.root(home)
        with installing(home, target.name):
            if self.installed(home):
                return  # another checkout installed it while this one waited
            scratch = scratch_for(target)
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                files = scratch / "files"
                files.mkdir(parents=True)
                run(["dpkg-deb", "-x", str(self._download(scratch)), str(files)], f"unpack {self.name}")
                files.rename(target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def _download(self, folder: Path) -> Path:
        """The package's ``.deb``, downloaded into ``folder``; the package lists are refreshed once
        when apt does not know the version yet.
        """
        download = ["apt-get", "download", "-q", f"{self.name}={self.version}"]
        try:
            run(download, f"apt-get download {self.name}", cwd=folder)
        except ConfigurationError as first:
            if os.geteuid() != 0:
                raise ConfigurationError(
                    f"{first}\nrun: sudo apt-get update (the package lists must know "
                    f"{self.name} {self.version}, Debian 12 bookworm), then k2 platform up again"
                ) from None
            run(["apt-get", "update", "-q"], "apt-get update")
            run(download, f"apt-get download {self.name} (after apt-get update)", cwd=folder)
        debs = sorted(folder.glob(f"{self.name}_*.deb"))
        if len(debs) != 1:
            raise ConfigurationError(f"apt-get download {self.name} left {len(debs)} .deb files in {folder}")
        return debs[0]
