"""The error envelope every failing response carries, and the correlation id it quotes."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from k2.api.models import ErrorBody, ErrorDetail, ErrorInfo


def correlation_id_of(scope: MutableMapping[str, Any]) -> str:
    """The request's correlation id, as the request middleware settled it."""
    return str(scope.get("state", {}).get("correlation_id", "unknown"))


def error_response(
    status: int,
    code: str,
    message: str,
    correlation_id: str,
    *,
    details: list[ErrorDetail] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON response for one error."""
    body = ErrorBody(
        error=ErrorInfo(code=code, message=message, correlation_id=correlation_id, details=details or [])
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)
