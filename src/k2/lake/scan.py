"""Plan which data files a read needs, through pyiceberg's partition and statistics pruning."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast
from urllib.parse import unquote, urlparse

from pyiceberg.expressions import (
    AlwaysTrue,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
)
from pyiceberg.table import Table

from k2.errors import ConfigurationError

# pyiceberg's predicates take (column, value) positionally at run time; type checkers only see
# their pydantic field signature. These typed names state the run-time one.
equal_to = cast(Callable[[str, object], BooleanExpression], EqualTo)
at_least = cast(Callable[[str, object], BooleanExpression], GreaterThanOrEqual)
at_most = cast(Callable[[str, object], BooleanExpression], LessThanOrEqual)
less_than = cast(Callable[[str, object], BooleanExpression], LessThan)
one_of = cast(Callable[[str, Iterable[object]], BooleanExpression], In)


def local_path(location: str) -> str:
    """A data file location as DuckDB opens it: ``file://`` URIs become plain paths."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return location


def data_paths(
    table: Table, row_filter: BooleanExpression | None = None, snapshot_id: int | None = None
) -> list[str]:
    """The data files of ``table`` at ``snapshot_id`` (default: current) that may hold rows
    matching ``row_filter``.

    Raises:
        ConfigurationError: if the table carries delete files, which K2 never writes; reading
            such a table by file list would return deleted rows.
    """
    if snapshot_id is None and table.current_snapshot() is None:
        return []
    tasks = table.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot_id).plan_files()
    paths = []
    for task in tasks:
        if task.delete_files:
            raise ConfigurationError(
                f"{table.name()} has delete files; K2 writes append-only tables and cannot read them"
            )
        paths.append(local_path(task.file.file_path))
    return paths
