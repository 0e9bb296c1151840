"""The root of every error K2 raises, classified by what the caller can do about it.

K2Error
├── RetryableError            the same call may succeed later (a commit conflict, a busy service)
│   └── DependencyUnavailableError  a service K2 calls is down or timing out (names which)
├── InvalidInputError         the caller's input is wrong; ValueError too
├── NotFoundError             a symbol, snapshot, table or file does not exist; LookupError too
└── ConfigurationError        settings or environment are wrong; nothing will work until fixed

Areas subclass these in their own ``errors.py`` (``k2.ingest.errors``, ``k2.kafka.errors``,
``k2.lake.errors``, ``k2.stream.errors``, ``k2.query.errors``, ``k2.api.errors``).
Edges (CLI, API) translate them once; inside the pipeline they propagate.
"""

from __future__ import annotations


class K2Error(Exception):
    """Base of every error raised by K2 on purpose."""


class RetryableError(K2Error):
    """The operation failed for a passing reason; repeating it may succeed."""


class DependencyUnavailableError(RetryableError):
    """A service K2 depends on (the catalog database, the object store, Kafka, the schema
    registry) refused the connection, timed out or failed on its side.

    ``dependency`` names it as the circuit breakers do (``catalog``, ``object_store``, ``kafka``,
    ``schema_registry``); only these errors count against a breaker.
    """

    def __init__(self, message: str, dependency: str) -> None:
        super().__init__(message)
        self.dependency = dependency


class InvalidInputError(K2Error, ValueError):
    """The input given to K2 is malformed or out of range."""


class NotFoundError(K2Error, LookupError):
    """Something the caller named does not exist."""


class ConfigurationError(K2Error):
    """K2's settings or environment are wrong."""
