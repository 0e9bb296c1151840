"""What every source yields to the loader."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from k2.lake.tables import TableSpec


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Rows for one table, with how much input they came from.

    ``rows_read`` counts every input row consumed, rejected ones included. A batch with
    ``replace_exchange`` set replaces all rows of that exchange (small reference tables).
    ``unique_ids`` promises that no ``message_id`` repeats within the load, which spares the
    writer a duplicate check inside the batch (duplicates against the lake are always checked).
    """

    table: TableSpec
    rows: pa.Table
    rows_read: int
    bytes_read: int
    replace_exchange: str | None = None
    unique_ids: bool = False


class Source(Protocol):
    """A load's input."""

    #: What kind of input, as metrics label it (asx, synthetic, file).
    kind: str

    @property
    def description(self) -> str:
        """What is being loaded, for the snapshot summary and the report."""
        ...

    @property
    def total_bytes(self) -> int | None:
        """Input size for progress, when known."""
        ...

    def batches(self) -> Iterator[SourceBatch]:
        """Yield the input as batches of v2 rows."""
        ...
