"""Reject files: every row a load could not take, with its file, line number and reason."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import TextIO


class RejectFile:
    """A CSV of rejected rows (``file,line,reason,text``), created on the first reject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._lock = threading.Lock()

    def add(self, file: str, line: int | None, reason: str, text: str) -> None:
        """Record one rejected row; safe to call from several threads."""
        with self._lock:
            self._add(file, line, reason, text)

    def _add(self, file: str, line: int | None, reason: str, text: str) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.DictWriter(self._handle, ["file", "line", "reason", "text"])
            self._writer.writeheader()
        self._writer.writerow(
            {"file": file, "line": "" if line is None else line, "reason": reason, "text": text}
        )
        self.count += 1

    def close(self) -> None:
        """Flush and close the file, if one was opened."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._writer = None
