"""ASX reference data: ``reference-data/company_info.csv`` (company id → symbol), dividends and
stock splits, each loaded as one batch that replaces its exchange's rows; mergers are rejected.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from k2.domain.venues import Venue
from k2.errors import InvalidInputError
from k2.ingest.rejects import RejectFile
from k2.ingest.sources.base import SourceBatch
from k2.lake.tables import DIVIDENDS, INSTRUMENTS, SPLITS, TableSpec
from k2.schemas.market import DIVIDEND, INSTRUMENT, SPLIT

NO_RECORDS = "NO RECORDS TO REPORT"


@dataclass(frozen=True, slots=True)
class Company:
    """One row of ``company_info.csv``."""

    company_id: str
    symbol: str
    name: str
    isin: str | None
    valid_from: date
    valid_to: date | None


def _us_date(text: str) -> date:
    return datetime.strptime(text.strip(), "%m/%d/%Y").replace(tzinfo=UTC).date()


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise InvalidInputError(f"not a decimal: {text!r}") from None


class AsxReference:
    """The reference files of one ASX directory; ``companies`` are read at once (tick files are
    named by company id).
    """

    def __init__(self, directory: Path, venue: Venue, rejects: RejectFile, ingested_at: datetime) -> None:
        self._dir = directory
        self.venue = venue
        self._rejects = rejects
        self._ingested_at = ingested_at
        self.companies = self._read_companies()

    def _read_companies(self) -> dict[str, Company]:
        companies: dict[str, Company] = {}
        with (self._dir / "company_info.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                companies[row["company_id"].strip()] = Company(
                    company_id=row["company_id"].strip(),
                    symbol=row["symbol"].strip(),
                    name=row["company_name"].strip(),
                    isin=row["ISIN"].strip() or None,
                    valid_from=_us_date(row["start_date"]),
                    valid_to=_us_date(row["end_date"]) if row["end_date"].strip() else None,
                )
        symbols = [c.symbol for c in companies.values()]
        if len(set(symbols)) != len(symbols):
            raise InvalidInputError("company_info.csv maps two company ids to the same symbol")
        return companies

    def batches(self) -> Iterator[SourceBatch]:
        """Instruments, dividends and splits, each one batch replacing its exchange's rows; mergers
        are rejected line by line (K2 does not model them yet).
        """
        v = self.venue
        instruments: list[dict[str, object]] = [
            {
                "symbol": c.symbol,
                "exchange": v.code,
                "asset_class": v.asset_class.value,
                "source_id": c.company_id,
                "name": c.name,
                "isin": c.isin,
                "currency": v.currency,
                "valid_from": c.valid_from,
                "valid_to": c.valid_to,
                "ingestion_timestamp": self._ingested_at,
            }
            for c in self.companies.values()
        ]
        yield self._reference(INSTRUMENTS, INSTRUMENT.arrow_schema(), instruments, 0)
        dividends, read = self._reference_rows("dividends.csv", self._dividend)
        yield self._reference(DIVIDENDS, DIVIDEND.arrow_schema(), dividends, read)
        splits, read = self._reference_rows("stock_splits.csv", self._split)
        yield self._reference(SPLITS, SPLIT.arrow_schema(), splits, read)
        mergers = self._dir / "mergers.csv"
        if mergers.is_file():
            for line_no, text in self._record_lines(mergers):
                self._rejects.add(str(mergers), line_no, "mergers are not modelled by K2 yet", text)

    def _reference(
        self, spec: TableSpec, schema: pa.Schema, rows: list[dict[str, object]], read: int
    ) -> SourceBatch:
        return SourceBatch(
            spec,
            pa.Table.from_pylist(rows, schema=schema),
            read or len(rows),
            0,
            replace_exchange=self.venue.code,
        )

    def _record_lines(self, path: Path) -> Iterator[tuple[int, str]]:
        """Data lines of a headered reference file, without the 'no records' placeholder."""
        with path.open(encoding="utf-8") as f:
            for line_no, raw in enumerate(f, start=1):
                text = raw.rstrip("\r\n")
                if line_no == 1 or not text.strip() or NO_RECORDS in text.upper():
                    continue
                yield line_no, text

    def _reference_rows(
        self, name: str, convert: Callable[[list[str]], dict[str, object]]
    ) -> tuple[list[dict[str, object]], int]:
        path = self._dir / name
        rows: list[dict[str, object]] = []
        read = 0
        if not path.is_file():
            return rows, read
        for line_no, text in self._record_lines(path):
            read += 1
            fields = next(csv.reader([text]))
            try:
                rows.append(convert(fields))
            except (InvalidInputError, ValueError, IndexError, KeyError) as exc:
                self._rejects.add(str(path), line_no, str(exc), text)
        return rows, read

    def _company(self, company_id: str) -> Company:
        try:
            return self.companies[company_id.strip()]
        except KeyError:
            raise InvalidInputError(f"unknown company id {company_id.strip()}") from None

    def _dividend(self, f: list[str]) -> dict[str, object]:
        company = self._company(f[0])
        return {
            "symbol": company.symbol,
            "exchange": self.venue.code,
            "declared_date": _us_date(f[1]),
            "ex_date": _us_date(f[2]),
            "record_date": _us_date(f[3]) if f[3].strip() else None,
            "pay_date": _us_date(f[4]) if f[4].strip() else None,
            "net_amount": _decimal(f[5]),
            "gross_amount": _decimal(f[6]) if f[6].strip() else None,
            "currency": f[7].strip(),
            "ingestion_timestamp": self._ingested_at,
        }

    def _split(self, f: list[str]) -> dict[str, object]:
        company = self._company(f[0])
        return {
            "symbol": company.symbol,
            "exchange": self.venue.code,
            "effective_date": _us_date(f[1]),
            "ratio": _decimal(f[2]),
            "ingestion_timestamp": self._ingested_at,
        }
