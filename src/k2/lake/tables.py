"""K2's Iceberg tables, each declared once: schema, partitioning, sort order, properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform, Transform

from k2.lake.errors import TableNotFoundError
from k2.schemas.market import DIVIDEND, INSTRUMENT, MINUTE_BAR, QUOTE, SPLIT, TRADE
from k2.schemas.record import Record

PARTITION_FIELD_ID_START = 1000
ROW_GROUP_ROWS = 16_384


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one K2 table is laid out.

    ``time_column`` names the event-time column of tables partitioned by day. Tables that are
    appended to are deduplicated on ``message_id``; reference tables are replaced per exchange.
    """

    name: str
    record: Record
    partition_by: tuple[tuple[str, str], ...] = ()
    sort_by: tuple[str, ...] = ()
    time_column: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def partition_spec(self) -> PartitionSpec:
        """The partition spec against the record's Iceberg schema."""
        schema = self.record.iceberg_schema()
        fields = []
        for offset, (column, transform_name) in enumerate(self.partition_by):
            transform: Transform[Any, Any] = (
                DayTransform() if transform_name == "day" else IdentityTransform()
            )
            name = f"{column}_day" if transform_name == "day" else column
            fields.append(
                PartitionField(
                    schema.find_field(column).field_id, PARTITION_FIELD_ID_START + offset, transform, name
                )
            )
        return PartitionSpec(*fields)

    def sort_order(self) -> SortOrder:
        """The sort order rows are written in."""
        schema = self.record.iceberg_schema()
        return SortOrder(
            *(
                SortField(source_id=schema.find_field(c).field_id, transform=IdentityTransform())
                for c in self.sort_by
            )
        )


def _properties(target_file_size_bytes: int) -> dict[str, str]:
    return {
        "format-version": "2",
        "write.format.default": "parquet",
        "write.parquet.compression-codec": "zstd",
        "write.parquet.row-group-limit": str(ROW_GROUP_ROWS),
        "write.target-file-size-bytes": str(target_file_size_bytes),
        "write.metadata.previous-versions-max": "100",
        # Other engines' commits (Trino's optimize, Spark); K2's own never retry this way: see committing().
        TableProperties.COMMIT_NUM_RETRIES: "8",
    }


def committing(table: Table) -> Table:
    """``table`` as one of K2's own commits uses it: with pyiceberg's commit retries off.

    pyiceberg retries a commit that lost a race by sending the same snapshot again on the new head,
    with the summary it was built with. K2 builds its summaries (the sink's Kafka offsets, the
    cumulative symbols) and its dedup from the table it commits on, so that retry would record
    another writer's offsets as never consumed; K2 rebuilds a lost commit from the new head instead
    (:meth:`k2.lake.writer.LakeWriter.append`), or gives it up and lets the next one catch up
    (compaction, the rollup). The table's own ``commit.retry.num-retries`` stays for other
    engines, whose retries re-apply their operations.
    """
    metadata = table.metadata
    properties = {**metadata.properties, TableProperties.COMMIT_NUM_RETRIES: "0"}
    return Table(
        table.name(),
        metadata.model_copy(update={"properties": properties}),
        table.metadata_location,
        table.io,
        table.catalog,
    )


TRADES = TableSpec(
    "trades",
    TRADE,
    partition_by=(("timestamp", "day"), ("exchange", "identity")),
    sort_by=("symbol", "timestamp", "source_sequence"),
    time_column="timestamp",
)
QUOTES = TableSpec(
    "quotes",
    QUOTE,
    partition_by=(("timestamp", "day"), ("exchange", "identity")),
    sort_by=("symbol", "timestamp", "source_sequence"),
    time_column="timestamp",
)
INSTRUMENTS = TableSpec(
    "instruments",
    INSTRUMENT,
    sort_by=("exchange", "symbol", "valid_from"),
)
DIVIDENDS = TableSpec("dividends", DIVIDEND, sort_by=("exchange", "symbol", "ex_date"))
SPLITS = TableSpec(
    "splits",
    SPLIT,
    sort_by=("exchange", "symbol", "effective_date"),
)

#: The trades' 1-minute partials (see :mod:`k2.lake.rollup`), one file per day and exchange.
BARS_1M = TableSpec(
    "bars_1m",
    MINUTE_BAR,
    partition_by=(("bucket_start", "day"), ("exchange", "identity")),
    sort_by=("symbol", "bucket_start"),
    time_column="bucket_start",
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (TRADES, QUOTES, INSTRUMENTS, DIVIDENDS, SPLITS, BARS_1M)}
MARKET_TABLES = (TRADES, QUOTES)


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name`` (``trades``, ``quotes``, …).

    Raises:
        TableNotFoundError: for a name K2 does not declare.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise TableNotFoundError(f"unknown table {name!r}; K2 has {', '.join(TABLES)}") from None


def ensure_table(catalog: Catalog, namespace: str, spec: TableSpec, target_file_size_bytes: int) -> Table:
    """Load ``spec``'s table, creating it first if it does not exist."""
    return catalog.create_table_if_not_exists(
        (namespace, spec.name),
        schema=spec.record.iceberg_schema(),
        partition_spec=spec.partition_spec(),
        sort_order=spec.sort_order(),
        properties=_properties(target_file_size_bytes),
    )


def load_table(catalog: Catalog, namespace: str, spec: TableSpec) -> Table:
    """Load ``spec``'s table.

    Raises:
        TableNotFoundError: when nothing created it yet.
    """
    try:
        return catalog.load_table((namespace, spec.name))
    except NoSuchTableError:
        raise TableNotFoundError(
            f"table {namespace}.{spec.name} does not exist yet; load data first (k2 ingest …)"
        ) from None
