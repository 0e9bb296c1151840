"""One ASGI middleware for what every request needs: a correlation id, the degradation level
(shedding what the level refuses, reporting the rest to the controller), a body-size cap,
metrics, rate-limit headers and one canonical log line.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from k2.api.degraded import ALWAYS_ANSWERED, DegradedMode, admits
from k2.api.envelope import error_response, overloaded_response
from k2.obs.metrics import K2Metrics
from k2.resilience.degradation import DegradationController, Level

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CORRELATION_HEADER = "x-correlation-id"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

log = structlog.get_logger("k2.api.access")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that hands the app an already read body, then the client's own
    messages (a streaming response listens for the disconnect).
    """
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _tags(state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The headers every response gets: correlation id, rate limit, degradation level."""
    tags = [(b"x-correlation-id", str(state["correlation_id"]).encode())]
    allowance = state.get("allowance")
    if allowance is not None:
        tags += [
            (b"x-ratelimit-limit", str(allowance.limit).encode()),
            (b"x-ratelimit-remaining", str(allowance.remaining).encode()),
            (b"x-ratelimit-reset", str(allowance.reset_epoch).encode()),
        ]
    level: Level = state["degraded"].level
    if level > Level.NORMAL:
        tags.append((b"x-k2-degraded", str(int(level)).encode()))
    return tags


def _bind_correlation_id(scope: Scope) -> None:
    """Take the caller's ``X-Correlation-ID`` when it is well formed, else a new one, into the
    request's state and every log line the request makes.
    """
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    offered = headers.get(CORRELATION_HEADER, "")
    correlation_id = offered if _CORRELATION_ID.fullmatch(offered) else uuid.uuid4().hex
    scope.setdefault("state", {})["correlation_id"] = correlation_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


class RequestMiddleware:
    """Wraps the app; see the module docstring."""

    def __init__(
        self, app: App, *, metrics: K2Metrics, max_body_bytes: int, degradation: DegradationController
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.degradation = degradation

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body, or None once it passes the size cap (declared or streamed)."""
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the app, its body read first (a 413 past the cap)."""
        has_body = scope["method"] in _BODY_METHODS
        body = await self._read_body(scope, receive) if has_body else None
        if has_body and body is None:
            response = error_response(
                413,
                "PAYLOAD_TOO_LARGE",
                f"request body larger than {self.max_body_bytes} bytes",
                scope["state"]["correlation_id"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive) if body is not None else receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _bind_correlation_id(scope)
        method = scope["method"]
        started = time.perf_counter()
        status = 500
        in_progress = self.metrics.http_in_progress.labels(method=method, route="*")
        in_progress.inc()
        level = self.degradation.level()
        if self.degradation.saturated():
            level = Level.SHEDDING
        mode = DegradedMode(level, self.degradation.settings)
        scope["state"]["degraded"] = mode
        admitted = admits(mode.level, scope["path"])
        # The operator's own calls (health checks, scrapes) neither cause nor mask an overload.
        measured = admitted and scope["path"] not in ALWAYS_ANSWERED

        sent = 0

        async def tagged_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + _tags(scope["state"])
            await send(message)

        if measured:
            self.degradation.request_started()
        try:
            if admitted:
                await self._answer(scope, receive, tagged_send)
            else:
                self.metrics.http_shed.labels(reason="degraded").inc()
                await overloaded_response(scope)(scope, receive, tagged_send)
        finally:
            in_progress.dec()
            route = getattr(scope.get("route"), "path", "<unmatched>")
            elapsed = time.perf_counter() - started
            if measured:
                self.degradation.request_finished(elapsed)
            if admitted and mode.level > Level.NORMAL:
                self.metrics.http_degraded.labels(level=str(int(mode.level))).inc()
            self.metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.http_request_duration.labels(method=method, route=route).observe(elapsed)
            self.metrics.http_response_bytes.labels(route=route).inc(sent)
            log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                caller=scope["state"].get("caller"),
                degradation_level=int(mode.level),
            )
