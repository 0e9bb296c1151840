"""Additive schema evolution: a table grows the optional columns a later writer schema adds.

K2 only ever adds optional columns. Data files written before a column existed read it as null
(Iceberg matches columns by field id), and a column is never dropped, renamed or retyped: a
column that exists with another type is refused, and the writer's messages go to the
dead-letter topic instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.types import IcebergType, ListType, MapType

from k2.errors import InvalidInputError
from k2.lake.errors import LakeCommitConflictError
from k2.schemas.record import Column

#: Schema changes tried before giving up to concurrent ones.
EVOLVE_ATTEMPTS = 3

log = structlog.get_logger(__name__)


class SchemaEvolutionError(InvalidInputError):
    """A column cannot join a table without retyping the one it has of that name."""


def add_optional_columns(table: Table, columns: Sequence[Column]) -> list[str]:
    """Add the ``columns`` that ``table`` lacks, as optional columns, in one schema change.

    The Iceberg type of each column is the one its kind declares (as for the record's own
    columns). Columns the table already has must have that type and be optional.

    Returns:
        The names of the columns added, in order; empty when the table had them all.

    Raises:
        SchemaEvolutionError: the table has one of the columns with another type, or as required.
        LakeCommitConflictError: concurrent schema changes kept winning.
    """
    name = ".".join(table.name())
    for _ in range(EVOLVE_ATTEMPTS):
        schema = table.schema()
        missing: list[tuple[Column, IcebergType]] = []
        for column in columns:
            wanted, _ = column.iceberg_type(0)  # add_column assigns the nested field ids
            try:
                existing = schema.find_field(column.name)
            except ValueError:
                missing.append((column, wanted))
                continue
            if _shape(existing.field_type) != _shape(wanted):
                raise SchemaEvolutionError(
                    f"{name}.{column.name} is {existing.field_type}, not {wanted}: K2 never retypes a column"
                )
            if existing.required:
                raise SchemaEvolutionError(f"{name}.{column.name} is required; added fields may be null")
        if not missing:
            return []
        try:
            with table.update_schema() as update:
                for column, wanted in missing:
                    update.add_column(column.name, wanted, doc=column.doc or None)
        except CommitFailedException:
            table.refresh()
            continue
        added = [column.name for column, _ in missing]
        log.info("table_columns_added", table=name, columns=added, schema_id=table.schema().schema_id)
        return added
    raise LakeCommitConflictError(f"{name}: concurrent schema changes; columns not added")


def _shape(field_type: IcebergType) -> object:
    """An Iceberg type without its nested field ids, which each table assigns on its own."""
    if isinstance(field_type, ListType):
        return ("list", _shape(field_type.element_type), field_type.element_required)
    if isinstance(field_type, MapType):
        return ("map", _shape(field_type.key_type), _shape(field_type.value_type), field_type.value_required)
    return field_type
