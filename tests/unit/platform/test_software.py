"""Two checkouts installing the same service at once: the second waits for the first."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from k2.platform.software import installing, scratch_for

HOLDER = """
import sys, time
from pathlib import Path
from k2.platform.software import installing
home, marks = Path(sys.argv[1]), Path(sys.argv[2])
with installing(home, "kafka-test"):
    marks.write_text("holding\\n")
    time.sleep(1.0)
    with marks.open("a") as out:
        out.write("installed\\n")
"""


def test_a_second_install_waits_for_the_first(tmp_path: Path) -> None:
    """While one process holds a service's install lock, another process's install of the same
    service waits, and then sees what the first one finished.
    """
    marks = tmp_path / "marks"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), str(marks)])
    try:
        deadline = time.monotonic() + 30
        while not marks.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marks.exists(), "the first install never took its lock"
        with installing(tmp_path, "kafka-test"):
            assert marks.read_text().splitlines() == ["holding", "installed"]
    finally:
        holder.wait(timeout=30)


def test_other_services_do_not_wait(tmp_path: Path) -> None:
    """Locks are per service: installing one does not hold up another."""
    with installing(tmp_path, "kafka-test"), installing(tmp_path, "registry-test"):
        pass


def test_scratch_directories_are_per_process(tmp_path: Path) -> None:
    """A build's scratch directory sits beside its target and names this process."""
    scratch = scratch_for(tmp_path / "libs")
    assert scratch.parent == tmp_path
    assert scratch.name.startswith("libs.partial-")
    assert scratch != scratch_for(tmp_path / "other")
