"""Errors the API raises itself (request-level problems no deeper layer knows about)."""

from __future__ import annotations

from k2.errors import K2Error


class ApiKeyMissingError(K2Error):
    """No X-API-Key header was sent."""


class ApiKeyInvalidError(K2Error):
    """The X-API-Key header names no configured key."""


class RateLimitedError(K2Error):
    """The caller's key used up its request allowance."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
