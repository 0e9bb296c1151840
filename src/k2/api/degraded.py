"""What the degradation level reduces in one request, and which requests a level still admits.

The request middleware asks the process's :class:`~k2.resilience.degradation.DegradationController`
for the level once per request and keeps it, as a :class:`DegradedMode`, in the request's scope:
the level cannot change under a request. Routes ask the mode what they may do and note what they
left out; the response then says so (``X-K2-Degraded`` and ``meta.degraded``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from k2.api.models import OutputFormat
from k2.query import TickQuery
from k2.resilience.degradation import Level
from k2.settings import DegradationSettings

#: Answered at every level: the operator's view of the process.
ALWAYS_ANSWERED = frozenset({"/health", "/metrics"})
#: Answered from metadata, at level 3 too.
METADATA = ALWAYS_ANSWERED | {
    "/v1/symbols",
    "/v1/stats",
    "/v1/snapshots",
    "/v1/loads",
    "/v1/pipeline",
    "/v1/coverage",
    "/v1/coverage/gaps",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
#: Reads whose answers the answer cache keeps: at level 3 they are answered on a cache hit only.
_CACHEABLE = re.compile(r"/v1/(?:trades|quotes|trades/query|quotes/query|aggregations|snapshots/\d+/query)")

#: What a response may say it reduced.
INCLUDE_LIVE = "include_live"
WITH_QUOTES = "with_quotes"
PAGE_SIZE = "page_size"
EXPORT_SIZE = "export_size"


def admits(level: Level, path: str) -> bool:
    """Whether a request for ``path`` is worked on at ``level`` (at level 3 a cacheable read
    still has to find its answer in the cache).
    """
    if level >= Level.SHEDDING:
        return path in ALWAYS_ANSWERED
    if level >= Level.CACHED_ONLY:
        return path in METADATA or _CACHEABLE.fullmatch(path) is not None
    return True


@dataclass(slots=True)
class DegradedMode:
    """The level one request is answered at, and what its answer left out."""

    level: Level
    settings: DegradationSettings
    reduced: list[str] = field(default_factory=list)

    def reduce(self, what: str) -> None:
        """Note that the answer leaves out or shrinks ``what``."""
        if what not in self.reduced:
            self.reduced.append(what)

    def meta(self) -> dict[str, object] | None:
        """``meta.degraded`` of the answer: its level and what it reduced (None at level 0)."""
        if self.level == Level.NORMAL:
            return None
        return {"level": int(self.level), "reduced": list(self.reduced)}


def mode_of(scope: MutableMapping[str, Any]) -> DegradedMode:
    """The request's mode, as the request middleware settled it."""
    mode: DegradedMode = scope["state"]["degraded"]
    return mode


def enrichment(request: Request, name: str, asked: bool) -> bool:
    """Whether the costly enrichment ``name`` (asked for or not) runs: not from level 1, and the
    answer then says it was left out.
    """
    mode = mode_of(request.scope)
    if asked and mode.level >= Level.NO_ENRICHMENTS:
        mode.reduce(name)
        return False
    return asked


def capped(request: Request, query: TickQuery, fmt: OutputFormat, max_rows: int) -> TickQuery:
    """``query`` with its limit within the smaller caps of level 2 and above: a fraction of
    ``max_rows`` for JSON pages, a smaller one for exports; the rest follows by cursor.
    """
    mode = mode_of(request.scope)
    if mode.level < Level.SMALLER_CAPS:
        return query
    json = fmt is OutputFormat.JSON
    fraction = mode.settings.page_fraction if json else mode.settings.export_fraction
    cap = max(1, int(max_rows * fraction))
    if query.limit <= cap:
        return query
    mode.reduce(PAGE_SIZE if json else EXPORT_SIZE)
    return dataclasses.replace(query, limit=cap)


def cached_only(request: Request) -> bool:
    """Whether only answers already cached may be given (level 3 and above)."""
    return mode_of(request.scope).level >= Level.CACHED_ONLY
