"""QuestDB as a peer: tables with a designated timestamp, ``PARTITION BY DAY`` and an indexed
``symbol SYMBOL``, loaded by its CSV ``COPY``, and asked over PG wire, HTTP ``/exec`` (JSON) and
HTTP ``/exp`` (Parquet).

Prices and quantities are QuestDB DECIMAL(18, 8) (9.3.4 has the type), so they compare exactly.
QuestDB orders rows by the designated timestamp only: ``first``/``last`` of a bar and the quote
an ``ASOF JOIN`` picks among several at one instant follow the order rows were loaded in, so the
CSV files are written in (timestamp, source_sequence) order, which the import keeps.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from benchmarks.api.serving import HOST, Client
from benchmarks.common import BenchmarkError, timed_ms
from benchmarks.peers.engine import (
    BAR_SECONDS,
    QUOTE_COLUMNS,
    TRADE_COLUMNS,
    Answer,
    Engine,
    Loaded,
    Rows,
    SqlEngine,
    Window,
    quoted,
)
from benchmarks.peers.questdb_server import HEAP, VERSION, QuestDB, java_version

TIME_FORMAT = "yyyy-MM-ddTHH:mm:ss.SSSUUUZ"
IMPORT_SECONDS = 1800.0
BUSY_SECONDS = 30.0
TABLES = {
    "trades": """
        CREATE TABLE trades (
            message_id VARCHAR, symbol SYMBOL INDEX, exchange SYMBOL, timestamp TIMESTAMP,
            price DECIMAL(18, 8), quantity DECIMAL(18, 8), source_sequence LONG
        ) TIMESTAMP(timestamp) PARTITION BY DAY
    """,
    "quotes": """
        CREATE TABLE quotes (
            symbol SYMBOL INDEX, exchange SYMBOL, timestamp TIMESTAMP, source_sequence LONG,
            bid_price DECIMAL(18, 8), bid_quantity DECIMAL(18, 8),
            ask_price DECIMAL(18, 8), ask_quantity DECIMAL(18, 8)
        ) TIMESTAMP(timestamp) PARTITION BY DAY
    """,
}
TRADE_LIST = ", ".join(TRADE_COLUMNS)
# A null sequence is QuestDB's smallest LONG, so it sorts first as K2's -1 does.
ORDER = "timestamp, source_sequence, message_id"


def instant(value: datetime) -> str:
    """A UTC instant as a timestamp literal."""
    return f"'{value.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}'"


class QuestSql:
    """The queries in QuestDB's SQL."""

    @staticmethod
    def _range(window: Window, start: datetime | None = None) -> str:
        return (
            f"symbol = {quoted(window.symbol)} AND timestamp >= {instant(start or window.start)} "
            f"AND timestamp < {instant(window.end)}"
        )

    def trades(self, window: Window) -> str:
        """Q1 and Q5."""
        where = self._range(window)
        return f"SELECT {TRADE_LIST} FROM trades WHERE {where} ORDER BY {ORDER} LIMIT {window.limit}"

    def bars(self, window: Window | None) -> str:
        """Q2 and Q3: ``SAMPLE BY`` on UTC minutes. VWAP stays decimal (exact, rounded to 8 places):
        casting each row to DOUBLE, as K2 does, cost QuestDB 2-3x on Q3.
        """
        where = "" if window is None else f"WHERE {self._range(window)}"
        return f"""
            SELECT symbol, exchange, timestamp AS interval_start, first(price) AS open, max(price) AS high,
                   min(price) AS low, last(price) AS close, sum(quantity) AS volume, count() AS trade_count,
                   round(sum(price * quantity) / sum(quantity), 8) AS vwap
            FROM trades {where}
            SAMPLE BY {BAR_SECONDS}s ALIGN TO CALENDAR
            ORDER BY symbol, interval_start
        """

    def with_quotes(self, window: Window) -> str:
        """Q4: ``ASOF JOIN`` on symbol and exchange (unmatched trades keep null quotes)."""
        return f"""
            WITH t AS ({self.trades(window)}),
            q AS (
                SELECT symbol, exchange, timestamp AS quote_timestamp, bid_price, bid_quantity,
                       ask_price, ask_quantity
                FROM quotes WHERE {self._range(window, window.quotes_from)}
            )
            SELECT t.message_id, t.symbol, t.exchange, t.timestamp, t.price, t.quantity, t.source_sequence,
                   q.quote_timestamp, q.bid_price, q.bid_quantity, q.ask_price, q.ask_quantity
            FROM t ASOF JOIN q ON (symbol, exchange)
        """

    def all_quotes(self) -> str:
        """Q4 full: every trade ``ASOF JOIN`` the quotes, summed up in QuestDB."""
        return """
            SELECT count() AS trades, count(q.timestamp) AS matched,
                   sum(q.bid_price) AS bid_sum, sum(q.ask_price) AS ask_sum
            FROM trades t ASOF JOIN quotes q ON (symbol, exchange)
        """


@dataclass(frozen=True, slots=True)
class ExecJson:
    """An ``/exec`` answer: column names and rows of JSON values (decimals as text)."""

    body: bytes

    def table(self) -> pa.Table:
        """The rows, column by column."""
        document = json.loads(self.body)
        return Rows([c["name"] for c in document["columns"]], [tuple(r) for r in document["dataset"]]).table()


@dataclass(frozen=True, slots=True)
class ParquetAnswer:
    """An ``/exp`` answer in Parquet."""

    body: bytes

    def table(self) -> pa.Table:
        """The file's rows."""
        return pq.read_table(io.BytesIO(self.body))


def _csv(rows: pa.Table, path: Path) -> None:
    """``rows`` as CSV in (timestamp, source_sequence) order, times in ISO-8601 UTC."""
    ordered = rows.sort_by([("timestamp", "ascending"), ("source_sequence", "ascending", "at_start")])
    index = ordered.schema.get_field_index("timestamp")
    # Seconds of a microsecond timestamp come with their six decimals.
    text = pc.strftime(ordered["timestamp"], format="%Y-%m-%dT%H:%M:%SZ")
    pacsv.write_csv(ordered.set_column(index, "timestamp", text), path)


class QuestDbPeer:
    """The server's tables and its three ways of being asked."""

    name = f"QuestDB {VERSION}"

    def __init__(self, server: QuestDB) -> None:
        self.server = server
        self.http = Client(server.ports.http)
        self.pg = psycopg.connect(
            host=HOST, port=server.ports.pg, user="admin", password="quest", dbname="qdb", autocommit=True
        )

    def describe(self) -> str:
        """How it was run, loaded and asked."""
        return (
            f"the `org.questdb:questdb:{VERSION}` jar from Maven Central on {java_version()} "
            f"(`{' '.join(HEAP)}`), a server on free loopback ports with its data under "
            "`benchmarks/.data/questdb-<run>` (removed after the run). Tables with a designated "
            "timestamp, `PARTITION BY DAY`, `symbol SYMBOL INDEX`, price and quantity DECIMAL(18, 8) "
            "(9.3.4 has the type, so values compare exactly, no float tolerance); loaded by writing "
            "each table as a CSV file in (timestamp, source_sequence) order and its parallel `COPY`. "
            "Bars are `SAMPLE BY 1m ALIGN TO CALENDAR` with `first`/`last`, VWAP in decimal arithmetic "
            "(rounded to 8 places; casting each row to DOUBLE as K2 does made Q3 2-3x slower); Q4 is "
            "`ASOF JOIN … ON (symbol, exchange)`. Both pick, among rows at one instant, by the order "
            "they were loaded in: that is K2's (source sequence) only because of the CSV's order, "
            "which the checks confirm. The same SQL (values as literals) over PG wire (psycopg, text "
            "results), HTTP `/exec` (JSON) and HTTP `/exp?fmt=parquet`."
        )

    def exec(self, sql: str) -> dict[str, Any]:
        """Run ``sql`` over ``/exec``; its JSON document."""
        document: dict[str, Any] = json.loads(self.http.get("/exec", {"query": sql}, auth=False).body)
        return document

    def _start_copy(self, sql: str) -> str:
        """Start a ``COPY``; its import id. The previous import's slot is freed a moment after
        its log says it finished, so a refusal for that is retried for a while.
        """
        deadline = time.monotonic() + BUSY_SECONDS
        while True:
            try:
                return str(self.exec(sql)["dataset"][0][0])
            except BenchmarkError as error:
                if "another import may be in progress" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def _import(self, table: str, rows: pa.Table) -> float:
        """Write ``rows`` as CSV and ``COPY`` them into ``table``; the seconds the CSV took."""
        path = self.server.copy_root / f"{table}.csv"
        _, csv_ms = timed_ms(partial(_csv, rows, path))
        self.exec(TABLES[table])
        import_id = self._start_copy(
            f"COPY {table} FROM '{path.name}' WITH HEADER true TIMESTAMP 'timestamp' "
            f"FORMAT '{TIME_FORMAT}' ON ERROR ABORT"
        )
        deadline = time.monotonic() + IMPORT_SECONDS
        while time.monotonic() < deadline:
            log = self.exec(
                f"SELECT status, message FROM sys.text_import_log WHERE id = {quoted(import_id)} "
                "AND phase IS NULL ORDER BY ts DESC LIMIT 1"
            )["dataset"]
            if log and log[0][0] == "finished":
                break
            if log and log[0][0] in ("failed", "cancelled"):
                raise BenchmarkError(f"QuestDB's COPY into {table} {log[0][0]}: {log[0][1]}")
            time.sleep(0.2)
        else:
            raise BenchmarkError(f"QuestDB's COPY into {table} did not finish in {IMPORT_SECONDS:.0f} s")
        path.unlink()
        count = self.exec(f"SELECT count() FROM {table}")["dataset"][0][0]
        if count != rows.num_rows:
            raise BenchmarkError(f"QuestDB's {table} holds {count:,} rows, not {rows.num_rows:,}")
        return csv_ms / 1000

    def load(self, trades: pa.Table, quotes: pa.Table) -> Loaded:
        """Write each table as CSV, then ``COPY`` it in (a parallel import) and wait for it."""
        started = time.perf_counter()
        csv_seconds = self._import("trades", trades.select(list(TRADE_COLUMNS)))
        csv_seconds += self._import("quotes", quotes.select(list(QUOTE_COLUMNS)))
        return Loaded(
            time.perf_counter() - started, "CSV file in (timestamp, sequence) order → `COPY`", csv_seconds
        )

    def _pg(self, sql: str) -> Answer:
        cursor = self.pg.execute(sql)
        names = [column.name for column in cursor.description or []]
        return Rows(names, cursor.fetchall())

    def _json(self, sql: str) -> Answer:
        return ExecJson(self.http.get("/exec", {"query": sql}, auth=False).body)

    def _parquet(self, sql: str) -> Answer:
        return ParquetAnswer(self.http.get("/exp", {"query": sql, "fmt": "parquet"}, auth=False).body)

    def engines(self) -> dict[str, Engine]:
        """PG wire, HTTP ``/exec`` (JSON) and HTTP ``/exp`` (Parquet), all with the same SQL."""
        sql = QuestSql()
        return {
            "PG wire": SqlEngine(sql, self._pg),
            "HTTP /exec JSON": SqlEngine(sql, self._json),
            "HTTP /exp Parquet": SqlEngine(sql, self._parquet),
        }

    def close(self) -> None:
        """Close the connections (the server stops with its ``with`` block)."""
        self.pg.close()
        self.http.close()
