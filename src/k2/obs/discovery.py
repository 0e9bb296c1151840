"""How a K2 process tells the platform's Prometheus where its metrics are: file-based service
discovery under the platform's data directory.

A process serving metrics on a port registers it for as long as it runs::

    with registered(settings, "sink", port):
        ...  # serve; Prometheus scrapes 127.0.0.1:port within seconds

Each registration is one JSON file, ``<platform data>/prometheus/targets/<job>-<pid>.json``, in
Prometheus's ``file_sd`` format; Prometheus re-reads the folder every few seconds, so a process
started after it is scraped without editing its configuration. The labels are ``job`` and
``component`` (both the job's name) and those the caller adds; Prometheus adds ``instance``
(``127.0.0.1:port``), which tells two processes of one job apart. There is deliberately no ``pid``
label: every restart would start new series under a new value, and the port already identifies
the process while it runs. The pid is in the file's name, so files that a killed process left
behind are pruned (:func:`prune`) when Prometheus starts.

Only the platform profile registers: the embedded profile runs no Prometheus.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from k2.errors import InvalidInputError
from k2.settings import K2Settings, Profile

_JOB = re.compile(r"[a-z][a-z0-9_-]*")


def targets_dir(settings: K2Settings) -> Path:
    """The folder Prometheus discovers K2's processes in: ``<platform data>/prometheus/targets``."""
    return settings.platform_data / "prometheus" / "targets"


def target_groups(job: str, port: int, labels: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """The ``file_sd`` content of one process serving metrics on ``127.0.0.1:port``."""
    return [{"targets": [f"127.0.0.1:{port}"], "labels": {**(labels or {}), "job": job}}]


@contextmanager
def registered(
    settings: K2Settings, job: str, port: int, labels: Mapping[str, str] | None = None
) -> Iterator[Path | None]:
    """Have the platform's Prometheus scrape ``127.0.0.1:port`` as ``job`` while the block runs.

    The registration file is written atomically (a temporary file renamed into place) and removed
    when the block ends, however it ends; one that a killed process leaves is pruned when
    Prometheus next starts.

    Args:
        settings: K2's settings; only the platform profile registers.
        job: The process's kind, e.g. ``k2-api`` or ``k2-sink``: its ``job`` label (its metrics
            say their component themselves, in ``k2_build_info``).
        port: The loopback port the process serves its metrics on.
        labels: Further labels of the process's series; keep them few and of bounded values.

    Yields:
        The registration file, or None under the embedded profile (nothing is written).

    Raises:
        InvalidInputError: ``job`` is not a lower-case name (letters, digits, ``_``, ``-``).
    """
    if not _JOB.fullmatch(job):
        raise InvalidInputError(f"job {job!r}: use a lower-case name of letters, digits, '_' and '-'")
    if settings.profile is not Profile.PLATFORM:
        yield None
        return
    folder = targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    # One process may serve several endpoints (tests build several apps): the port tells them apart.
    path = folder / f"{job}-{os.getpid()}-{port}.json"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(target_groups(job, port, labels), out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def prune(settings: K2Settings) -> list[Path]:
    """Remove the registrations of processes no longer running; return the files removed."""
    removed = []
    for path in sorted(targets_dir(settings).glob("*-*-*.json")):
        pid = path.stem.rsplit("-", 2)[1]
        if pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return True
