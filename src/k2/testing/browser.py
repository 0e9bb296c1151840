"""How K2's browser tests and the console benchmark launch headless Chromium: Debian's
``chromium`` (``make browser`` installs it), never Playwright's own download, with the flags this
machine's closed network needs (no background connections, no QUIC, no component updates).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class LaunchOptions(TypedDict):
    """Keyword arguments of Playwright's ``chromium.launch``."""

    executable_path: Path
    headless: bool
    args: list[str]


def launch_options() -> LaunchOptions:
    """How to launch Debian's Chromium headless."""
    return {"executable_path": CHROMIUM, "headless": True, "args": list(FLAGS)}
