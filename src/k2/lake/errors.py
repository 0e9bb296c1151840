"""Errors of the Iceberg lake."""

from __future__ import annotations

from k2.errors import DependencyUnavailableError, InvalidInputError, NotFoundError, RetryableError


class TableNotFoundError(NotFoundError):
    """A K2 table does not exist in the catalog yet (nothing was loaded)."""


class SnapshotNotFoundError(NotFoundError):
    """No snapshot matches the id, tag or time asked for."""


class LakeCommitConflictError(RetryableError):
    """Another writer committed first and the retries ran out; the same load can be re-run."""


class MaintenanceError(InvalidInputError):
    """A maintenance request cannot be carried out as asked."""


class LakeUnavailableError(DependencyUnavailableError):
    """The catalog database or the warehouse's store cannot be reached (``dependency`` says
    which); nothing was committed.
    """
