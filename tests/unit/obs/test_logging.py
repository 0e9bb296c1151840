"""K2's log lines stay one JSON object per line whatever a thread does."""

from __future__ import annotations

import threading

import orjson
import pytest

from k2.obs.logging import configure_logging
from k2.settings import LogLevel, ObsSettings


def _crash() -> None:
    raise RuntimeError("the refresh broke")


def test_a_threads_uncaught_exception_is_one_json_log_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashing thread's traceback arrives as one structured event naming the thread, not as raw
    lines on stderr that would split the JSON lines other threads write (a sink's log is read
    line by line)."""
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored afterwards
    configure_logging(ObsSettings(log_level=LogLevel.INFO, log_format="json"))
    thread = threading.Thread(target=_crash, name="k2-rollup")
    thread.start()
    thread.join()
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert (lines[0]["event"], lines[0]["level"], lines[0]["thread"]) == (
        "thread_crashed",
        "error",
        "k2-rollup",
    )
    assert "RuntimeError: the refresh broke" in lines[0]["exception"]
