"""Which failures of the catalog database and the warehouse's store mean the service is down,
and the lake's calls through their circuit breakers.

The catalog is down when SQLAlchemy cannot connect or lost the connection (``OperationalError``,
``InterfaceError``, a pool timeout); any other database error is a bug or a bad request. The store
is down when reading or writing a file fails with anything but "no such file" (a 404), and when
DuckDB's reads of Parquet files fail for input/output reasons. Both become
:class:`~k2.lake.errors.LakeUnavailableError` naming the dependency, which is all that counts
against its breaker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
from sqlalchemy import exc as sql

from k2.lake.errors import LakeUnavailableError
from k2.resilience.breakers import Breakers, Dependency

#: SQLAlchemy's errors for a database that cannot be reached or stopped answering.
CATALOG_OUTAGES = (sql.OperationalError, sql.InterfaceError, sql.DisconnectionError, sql.TimeoutError)
#: DuckDB's errors for files it could not read.
_DUCKDB_OUTAGES = (duckdb.IOException, duckdb.HTTPException)


@contextlib.contextmanager
def classified(doing: str) -> Iterator[None]:
    """Turn the catalog's and the store's outages raised in the block into
    :class:`LakeUnavailableError`; every other error passes unchanged.

    Args:
        doing: what the block does, for the message (``"load trades"``).
    """
    try:
        yield
    except CATALOG_OUTAGES as error:
        raise LakeUnavailableError(
            f"{doing}: the catalog database cannot be reached: {error}",
            Dependency.CATALOG,
        ) from error
    except FileNotFoundError:
        raise
    except (OSError, *_DUCKDB_OUTAGES) as error:
        raise LakeUnavailableError(
            f"{doing}: the object store failed: {error}", Dependency.OBJECT_STORE
        ) from error


@contextlib.contextmanager
def catalog_call(breakers: Breakers, doing: str) -> Iterator[None]:
    """The block as one call to the catalog database, through its breaker.

    Raises:
        BreakerOpenError: the catalog's breaker is open; the block did not run.
        LakeUnavailableError: the catalog (or, if the block reads files, the store) is down.
    """
    with breakers.guard(Dependency.CATALOG), classified(doing):
        yield


@contextlib.contextmanager
def store_call(breakers: Breakers, doing: str) -> Iterator[None]:
    """The block as one call to the object store, through its breaker.

    Raises:
        BreakerOpenError: the store's breaker is open; the block did not run.
        LakeUnavailableError: the store is down.
    """
    with breakers.guard(Dependency.OBJECT_STORE), classified(doing):
        yield


@contextlib.contextmanager
def lake_call(breakers: Breakers, doing: str) -> Iterator[None]:
    """The block as one call to both the catalog and the store (a commit writes files, then
    moves the catalog's pointer): refused when either breaker is open, and counted against the
    one whose outage it raised.

    Raises:
        BreakerOpenError: a breaker is open; the block did not run.
        LakeUnavailableError: the catalog or the store is down.
    """
    with breakers.guard(Dependency.CATALOG), breakers.guard(Dependency.OBJECT_STORE), classified(doing):
        yield
