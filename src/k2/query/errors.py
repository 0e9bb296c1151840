"""Errors of the read path."""

from __future__ import annotations

from k2.errors import InvalidInputError, NotFoundError


class InvalidQueryError(InvalidInputError):
    """A query's parameters are malformed, contradictory or beyond the limits."""


class InvalidCursorError(InvalidQueryError):
    """A page cursor is malformed, or was issued for other filters."""


class SymbolNotFoundError(NotFoundError):
    """No data for the symbol asked about."""


class EngineUnsupportedError(InvalidQueryError):
    """The engine that answers reads (``K2_QUERY_ENGINE``) cannot answer this one."""
