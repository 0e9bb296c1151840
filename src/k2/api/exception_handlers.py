"""Every error leaves the API in one body: ``{"error": {code, message, correlation_id, details}}``.

K2's errors are translated here, once, by class; anything else becomes a 500 that says nothing
about internals (the log line carries the traceback and the same correlation id). A dependency
that is down (:class:`~k2.errors.DependencyUnavailableError`) answers 503
``DEPENDENCY_UNAVAILABLE`` naming it in ``details`` (``{"field": "dependency", "message":
"catalog"}``), with ``Retry-After``: the seconds until its open circuit breaker lets a probe
through, or 1 while the breaker is still counting failures.
"""

from __future__ import annotations

import math

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from k2.api.envelope import correlation_id_of, error_response
from k2.api.errors import ApiKeyInvalidError, ApiKeyMissingError, RateLimitedError
from k2.api.models import ErrorDetail
from k2.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    InvalidInputError,
    K2Error,
    NotFoundError,
    RetryableError,
)
from k2.lake.errors import SnapshotNotFoundError, TableNotFoundError
from k2.obs.metrics import K2Metrics
from k2.query.errors import EngineUnsupportedError, InvalidCursorError
from k2.resilience.errors import BreakerOpenError

log = structlog.get_logger(__name__)

# Most specific first: the first class an error is an instance of decides.
_STATUS: list[tuple[type[K2Error], int, str]] = [
    (ApiKeyMissingError, 401, "UNAUTHORIZED"),
    (ApiKeyInvalidError, 403, "FORBIDDEN"),
    (RateLimitedError, 429, "RATE_LIMITED"),
    (InvalidCursorError, 400, "INVALID_CURSOR"),
    (EngineUnsupportedError, 400, "UNSUPPORTED_BY_ENGINE"),
    (InvalidInputError, 400, "INVALID_PARAMETER"),
    (SnapshotNotFoundError, 404, "SNAPSHOT_NOT_FOUND"),
    (TableNotFoundError, 404, "NO_DATA"),
    (NotFoundError, 404, "NOT_FOUND"),
    (RetryableError, 503, "RETRY_LATER"),
    (ConfigurationError, 503, "SERVICE_UNAVAILABLE"),
]
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _dependency_unavailable(request: Request, error: DependencyUnavailableError) -> JSONResponse:
    retry_after = 1
    if isinstance(error, BreakerOpenError):
        retry_after = max(1, math.ceil(error.retry_after_s))
        metrics: K2Metrics = request.app.state.metrics
        metrics.http_shed.labels(reason="breaker_open").inc()
    log.warning("dependency_unavailable", dependency=error.dependency, message=str(error))
    return error_response(
        503,
        "DEPENDENCY_UNAVAILABLE",
        f"{error.dependency} is unavailable; retry in {retry_after} s",
        correlation_id_of(request.scope),
        details=[ErrorDetail(field="dependency", message=error.dependency)],
        headers={"Retry-After": str(retry_after)},
    )


def _k2_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, K2Error)
    if isinstance(error, DependencyUnavailableError):
        return _dependency_unavailable(request, error)
    correlation_id = correlation_id_of(request.scope)
    for cls, status, code in _STATUS:
        if isinstance(error, cls):
            headers = (
                {"Retry-After": str(error.retry_after_seconds)}
                if isinstance(error, RateLimitedError)
                else None
            )
            if isinstance(error, RetryableError):
                headers = {"Retry-After": "1"}
            log.info("request_refused", code=code, message=str(error))
            return error_response(status, code, str(error), correlation_id, headers=headers)
    log.error("unclassified_k2_error", error_type=type(error).__name__, message=str(error))
    return error_response(500, "INTERNAL_ERROR", "internal error; quote the correlation id", correlation_id)


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = [
        ErrorDetail(field=".".join(str(part) for part in e.get("loc", ())), message=str(e.get("msg", "")))
        for e in error.errors()
    ]
    names = ", ".join(d.field for d in details) or "the request"
    return error_response(
        400,
        "VALIDATION_ERROR",
        f"invalid value for {names}",
        correlation_id_of(request.scope),
        details=details,
    )


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "HTTP_ERROR")
    message = str(error.detail)
    return error_response(
        error.status_code,
        code,
        message,
        correlation_id_of(request.scope),
        headers=dict(error.headers) if error.headers else None,
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(error).__name__)
    return error_response(
        500, "INTERNAL_ERROR", "internal error; quote the correlation id", correlation_id_of(request.scope)
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(K2Error, _k2_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
