"""The shared software cache (``K2_PLATFORM_HOME``): installs that two checkouts on one machine
may run at the same time.

Each service's install holds a lock of its own under the cache while it checks, builds and
renames its software into place, so a second ``k2 platform up`` waits for the first install to
finish and then finds the software there, instead of deleting it under the first one's feet.
Builds run in a scratch directory of their own process, renamed into place once complete.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
