"""What a load did, per table and in total, and per Kafka topic when it went through Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TableCounts:
    """Counts for one table of a load."""

    rows_read: int = 0
    rows_written: int = 0
    duplicates_skipped: int = 0
    commits: int = 0


@dataclass
class IngestReport:
    """The outcome of one load: what was read, written (or produced), rejected and skipped, and how
    fast. Into Kafka, ``topics`` holds the messages each topic acknowledged; the tables' written
    counts are then the reference data's only.
    """

    load_id: str
    source: str
    destination: str = "lake"
    tables: dict[str, TableCounts] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    messages_failed: int = 0
    message_bytes: int = 0
    rows_rejected: int = 0
    reject_file: Path | None = None
    elapsed_seconds: float = 0.0
    snapshot_ids: dict[str, int] = field(default_factory=dict)

    def counts(self, table: str) -> TableCounts:
        """The counts of ``table``, created empty on first use."""
        return self.tables.setdefault(table, TableCounts())

    def note_snapshot(self, table: str, snapshot_id: int | None) -> None:
        """Remember ``table``'s newest snapshot of this load (None: it committed nothing)."""
        if snapshot_id is not None:
            self.snapshot_ids[table] = snapshot_id

    @property
    def messages(self) -> int:
        """Messages Kafka acknowledged, over all topics."""
        return sum(self.topics.values())

    @property
    def rows_read(self) -> int:
        """Input rows read, over all tables (rejected rows included)."""
        return sum(c.rows_read for c in self.tables.values())

    @property
    def rows_written(self) -> int:
        """Rows added to the lake."""
        return sum(c.rows_written for c in self.tables.values())

    @property
    def duplicates_skipped(self) -> int:
        """Rows already in the lake, not written again."""
        return sum(c.duplicates_skipped for c in self.tables.values())

    @property
    def rows_per_second(self) -> float:
        """Input rows read per second of the load."""
        return self.rows_read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        kafka = (
            {"messages": self.messages, "messages_failed": self.messages_failed, "topics": self.topics}
            if self.destination == "kafka"
            else {}
        )
        return {
            "load_id": self.load_id,
            "source": self.source,
            "destination": self.destination,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "duplicates_skipped": self.duplicates_skipped,
            "reject_file": str(self.reject_file) if self.reject_file else None,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "tables": {name: vars(c) for name, c in self.tables.items()},
            "snapshot_ids": self.snapshot_ids,
            **kafka,
        }
