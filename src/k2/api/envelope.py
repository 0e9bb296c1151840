"""The error envelope every failing response carries, and what every envelope says about its
request: the correlation id, and how a degraded answer was reduced.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from k2.api.degraded import mode_of
from k2.api.models import ErrorBody, ErrorDetail, ErrorInfo

OVERLOADED = "OVERLOADED"


def correlation_id_of(scope: MutableMapping[str, Any]) -> str:
    """The request's correlation id, as the request middleware settled it."""
    return str(scope.get("state", {}).get("correlation_id", "unknown"))


def request_meta(scope: MutableMapping[str, Any]) -> dict[str, object]:
    """What a JSON envelope's ``meta`` says about its request: the correlation id, and under a
    degradation level ``degraded`` (the level and what the answer reduced).
    """
    meta: dict[str, object] = {"correlation_id": correlation_id_of(scope)}
    degraded = mode_of(scope).meta()
    if degraded is not None:
        meta["degraded"] = degraded
    return meta


def overloaded_response(scope: MutableMapping[str, Any]) -> JSONResponse:
    """The 503 refusing a request the degradation level does not let K2 work on."""
    mode = mode_of(scope)
    return error_response(
        503,
        OVERLOADED,
        f"K2 is overloaded (degradation level {int(mode.level)}); retry later",
        correlation_id_of(scope),
        details={"level": int(mode.level)},
        headers={"Retry-After": str(mode.settings.retry_after_s)},
    )


def error_response(
    status: int,
    code: str,
    message: str,
    correlation_id: str,
    *,
    details: list[ErrorDetail] | dict[str, int] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON response for one error."""
    body = ErrorBody(
        error=ErrorInfo(code=code, message=message, correlation_id=correlation_id, details=details or [])
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)
