"""Read a delimited text file in bounded batches of string fields, keeping exact line numbers.

pyarrow's streaming CSV reader does the parsing. Every physical line becomes a row (blank lines
included, so they can be counted and dropped), except lines with the wrong number of fields,
which the reader hands to a callback and skips. Rows carry their ordinal among the rows the
reader kept; :meth:`CsvRows.line_numbers` turns ordinals into physical line numbers once the
file is read, scanning the file again only if some lines were skipped.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from k2.ingest.rejects import RejectFile

READ_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Consecutive rows of one file: their ordinals and one string array per column."""

    ordinals: pa.Int64Array
    fields: list[pa.ChunkedArray]
    bytes_read: int
    rows_read: int

    def text(self, delimiter: str = ",") -> pa.ChunkedArray:
        """The rows joined back into text, for reject files."""
        return pc.binary_join_element_wise(*self.fields, delimiter)


@dataclass
class CsvRows:
    """The rows of one file, read by :meth:`batches`."""

    path: Path
    columns: int
    batch_rows: int
    header: bool = False
    delimiter: str = ","
    skipped: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    _reported_skips: int = 0

    def batches(self) -> Iterator[RowBatch]:
        """Yield the file's rows; blank lines are dropped, lines of the wrong width skipped."""

        def on_invalid(row: pacsv.InvalidRow) -> str:
            self.skipped.append(row.text)
            return "skip"

        names = [f"f{i}" for i in range(self.columns)]
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1 if self.header else 0, block_size=READ_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=self.delimiter, ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        total = self.path.stat().st_size
        ordinal = 0
        consumed = 0
        self._reported_skips = 0
        pending: list[pa.RecordBatch] = []
        for record_batch in reader:
            pending.append(record_batch)
            if sum(b.num_rows for b in pending) >= self.batch_rows:
                batch, ordinal, consumed = self._batch(pending, ordinal, consumed, total)
                pending = []
                yield batch
        if pending:
            yield self._batch(pending, ordinal, consumed, total)[0]

    def _batch(
        self, pending: list[pa.RecordBatch], ordinal: int, consumed: int, total: int
    ) -> tuple[RowBatch, int, int]:
        table = pa.Table.from_batches(pending)
        fields = [table.column(i) for i in range(self.columns)]
        ordinals = pa.array(np.arange(ordinal, ordinal + table.num_rows, dtype=np.int64))
        maybe_blank = pc.equal(pc.utf8_length(fields[0]), 0)
        if pc.any(maybe_blank).as_py():
            blank = pc.equal(pc.utf8_length(pc.binary_join_element_wise(*fields, "")), 0)
            keep = pc.invert(blank)
            fields = [f.filter(keep) for f in fields]
            ordinals = ordinals.filter(keep)
        data_bytes = sum(b.size for f in fields for c in f.chunks if (b := c.buffers()[2]) is not None)
        share = min(total - consumed, data_bytes + table.num_rows * (self.columns + 1))
        skips, self._reported_skips = len(self.skipped) - self._reported_skips, len(self.skipped)
        batch = RowBatch(ordinals, fields, share, len(ordinals) + skips)
        return batch, ordinal + table.num_rows, consumed + share

    def reject(self, batch: RowBatch, rejects: pa.Table) -> None:
        """Remember the rows of ``batch`` named by ``rejects`` (``ordinal, reason``)."""
        if rejects.num_rows:
            at = pc.index_in(rejects["ordinal"], batch.ordinals)
            self.rejected.extend(
                zip(
                    rejects["ordinal"].to_pylist(),
                    rejects["reason"].to_pylist(),
                    batch.text(self.delimiter).take(at).to_pylist(),
                    strict=True,
                )
            )

    def write_rejects(self, reject_file: RejectFile) -> None:
        """Write remembered rejects and skipped lines with their line numbers; after reading."""
        self.rejected.sort()
        lines = self.line_numbers([ordinal for ordinal, _, _ in self.rejected])
        for line, (_, reason, text) in zip(lines, self.rejected, strict=True):
            reject_file.add(str(self.path), line, reason, text)
        for line, text in zip(self.skipped_lines() if self.skipped else [], self.skipped, strict=True):
            found = len(next(csv.reader([text], delimiter=self.delimiter), []))
            reject_file.add(str(self.path), line, f"expected {self.columns} fields, found {found}", text)

    def line_numbers(self, ordinals: list[int]) -> list[int]:
        """Physical 1-based line numbers of rows given by ordinal; call after :meth:`batches`."""
        first = 2 if self.header else 1
        if not self.skipped:
            return [o + first for o in ordinals]
        bad_lines = self.skipped_lines()
        lines = []
        for o in ordinals:
            line = o + first
            # Each skipped line at or before the row's position pushes it one line down.
            while True:
                shift = bisect.bisect_right(bad_lines, line)
                if o + first + shift == line:
                    break
                line = o + first + shift
            lines.append(line)
        return lines

    def skipped_lines(self) -> list[int]:
        """Physical line numbers of the lines skipped for their width, in order."""
        bad = []
        with self.path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for number, row in enumerate(csv.reader(handle, delimiter=self.delimiter), start=1):
                if self.header and number == 1:
                    continue
                if row and len(row) != self.columns:
                    bad.append(number)
        return bad
