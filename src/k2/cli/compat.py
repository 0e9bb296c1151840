"""``k2-query``: the brief's query command, kept for compatibility; same as ``k2 query``."""

from __future__ import annotations

from k2.cli import query


def main() -> None:
    """Entry point of the ``k2-query`` script."""
    query.app()
