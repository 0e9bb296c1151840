"""Reads answered by a Trino server over the same Iceberg tables (``K2_QUERY_ENGINE=trino``).

Trino reads K2's tables through its Iceberg connector on K2's own JDBC catalog
(:mod:`k2.platform.trino`), so each answer here is the answer DuckDB gives, row for row: the same
order (event time, sequence with null as -1, message id), the same page cursors (a cursor one
engine issued is followed by the other), decimals as ``decimal(18, 8)`` and event times as UTC
microseconds. Snapshots are resolved from Iceberg's metadata by the
:class:`~k2.query.engine.QueryEngine`, as under DuckDB, and read with ``FOR VERSION AS OF`` (a
snapshot id, a tag's snapshot, a cursor's snapshot) or ``FOR TIMESTAMP AS OF`` (a time).

Bars are aggregated by Trino into per-bucket open, high, low, close, volume, count and the exact
notional; the VWAP is then rounded by :func:`k2.query.aggregates.finish`, the same code DuckDB's
bars end in. Values are bound as parameters; the only text formatted into the SQL is K2's own
(table names, column lists, and a snapshot id or time that are typed values, because Trino's time
travel clauses take no parameters).
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pyarrow as pa
from trino.dbapi import Connection
from trino.exceptions import HttpError, TrinoConnectionError, TrinoQueryError

from k2.domain.venues import VENUES
from k2.errors import DependencyUnavailableError
from k2.lake.tables import QUOTES, TRADES, TableSpec
from k2.query import aggregates
from k2.query.bars import (
    BAR_SCHEMA,
    TWAP_SCHEMA,
    BarQuery,
    DailySummary,
    summary_of,
    summary_query,
    venue_clock,
)
from k2.query.engine import CURRENT, AsOf, QueryEngine, Selection
from k2.query.errors import InvalidQueryError
from k2.query.ticks import Page, TickQuery, cut, plan

#: The dependency name Trino's failures carry (``DEPENDENCY_UNAVAILABLE`` details).
DEPENDENCY = "trino"
#: The user K2 runs its queries as (Trino on loopback authenticates nobody).
USER = "k2"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: K2's order of ticks; null sequences sort as -1, as in DuckDB's reads.
_SEQUENCE = "coalesce(source_sequence, -1)"
_ORDER_COLUMNS = f"timestamp, {_SEQUENCE}, message_id"
_ORDER_KEY = f"ROW({_ORDER_COLUMNS})"
#: Microseconds since the epoch of a ``timestamp(6) with time zone`` (Trino's interval and
#: date_diff stop at milliseconds; the text form has all six digits).
_EPOCH_US = (
    "(date_diff('second', TIMESTAMP '1970-01-01 00:00:00 UTC', {0}) * 1000000 "
    "+ CAST(substr(CAST({0} AS varchar), 21, 6) AS bigint))"
)
#: A bucket of ``?`` seconds on the wall clock ``wall`` (a zone-less timestamp): counted from the
#: wall clock's midnight, as every interval divides a day.
_BUCKET = (
    "date_add('second', ((hour({0}) * 3600 + minute({0}) * 60 + second({0})) / ?) * ?, "
    "date_trunc('day', {0}))"
)

#: Columns of bars before the VWAP is rounded from the notional.
_COMBINED_SCHEMA = pa.schema(
    [
        *(
            BAR_SCHEMA.field(name)
            for name in BAR_SCHEMA.names
            if name not in ("vwap", "first_trade", "last_trade")
        ),
        pa.field("notional", pa.decimal128(38, 16), nullable=False),
        BAR_SCHEMA.field("first_trade"),
        BAR_SCHEMA.field("last_trade"),
    ]
)


class TrinoReader:
    """Reads K2's tables through a Trino coordinator, one query per read."""

    name = "trino"

    def __init__(self, engine: QueryEngine, url: str, catalog: str) -> None:
        """Args:
        engine: resolves snapshots, tags and times from Iceberg's metadata.
        url: the coordinator's base URL, e.g. ``http://127.0.0.1:8090``.
        catalog: Trino's catalog of K2's tables (the lake's catalog name).
        """
        self.engine = engine
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._scheme = parts.scheme or "http"
        self._catalog = catalog
        self._url = url

    def _table(self, spec: TableSpec, as_of: AsOf, snapshot_id: int) -> str:
        """The FROM item of ``spec`` at the snapshot ``as_of`` names (``snapshot_id``, which the
        metadata resolved it to).
        """
        name = f'"{self._catalog}"."{self.engine.namespace}"."{spec.name}"'
        if as_of.time is not None:
            instant = as_of.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            return f"{name} FOR TIMESTAMP AS OF TIMESTAMP '{instant} UTC'"
        return f"{name} FOR VERSION AS OF {int(snapshot_id)}"

    def _snapshot(self, spec: TableSpec, as_of: AsOf) -> int | None:
        """The snapshot ``as_of`` names in ``spec``'s table, as DuckDB's reads resolve it."""
        return self.engine.snapshot_id(self.engine.table(spec), as_of)

    def run(self, sql: str, params: list[object], schema: pa.Schema) -> pa.Table:
        """Run ``sql`` with ``params`` bound and return its rows as ``schema``.

        Raises:
            DependencyUnavailableError: Trino does not answer, or failed on its side.
            InvalidQueryError: Trino refused the query as the user's error.
        """
        connection = Connection(
            host=self._host,
            port=self._port,
            http_scheme=self._scheme,
            user=USER,
            catalog=self._catalog,
            schema=self.engine.namespace,
        )
        try:
            with closing(connection):
                cursor = connection.cursor()
                cursor.execute(sql, params)
                rows = cursor.fetchall()
        except (TrinoConnectionError, HttpError, OSError) as error:
            raise DependencyUnavailableError(f"Trino at {self._url}: {error}", DEPENDENCY) from None
        except TrinoQueryError as error:
            if error.error_type == "USER_ERROR":
                raise InvalidQueryError(f"Trino refused the query: {error.message}") from None
            raise DependencyUnavailableError(f"Trino failed: {error.message}", DEPENDENCY) from None
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
        return pa.Table.from_arrays(
            [pa.array(column, type=f.type) for column, f in zip(columns, schema, strict=True)], schema=schema
        )

    def trades(self, query: TickQuery) -> Page:
        """One page of trades; see :func:`k2.query.ticks.trades`."""
        return self._page(TRADES, query)

    def quotes(self, query: TickQuery) -> Page:
        """One page of quotes; see :func:`k2.query.ticks.quotes`."""
        return self._page(QUOTES, query)

    def _page(self, spec: TableSpec, query: TickQuery) -> Page:
        """One page of ``spec``'s rows, ordered and cut as :func:`k2.query.ticks.page_of` does."""
        planned = plan(spec, query, self.engine.settings.max_limit)
        schema = spec.record.arrow_schema()
        snapshot_id = self._snapshot(spec, planned.as_of)
        if snapshot_id is None:
            return Page(schema.empty_table(), None, None)
        params: list[object] = []
        where = _where(query.selection, params)
        direction = "DESC" if query.descending else "ASC"
        after = planned.after
        if after is not None:
            # Strictly after the cursor's row in K2's order (before it, descending); the bound on
            # the time alone lets Trino prune files.
            at = EPOCH + timedelta(microseconds=after.timestamp_us)
            beyond = "<" if query.descending else ">"
            where += (
                f" AND timestamp {beyond}= ? AND (timestamp {beyond} ? OR (timestamp = ? AND "
                f"({_SEQUENCE} {beyond} ? OR ({_SEQUENCE} = ? AND message_id {beyond} ?))))"
            )
            params += [at, at, at, after.sequence, after.sequence, after.message_id]
        sql = (
            f"SELECT {', '.join(_quoted(n) for n in schema.names)} "
            f"FROM {self._table(spec, planned.as_of, snapshot_id)} WHERE {where} "
            f"ORDER BY timestamp {direction}, {_SEQUENCE} {direction}, message_id {direction} "
            f"LIMIT {int(query.limit) + 1}"
        )
        return cut(self.run(sql, params, schema), query.limit, snapshot_id, planned.fingerprint)

    def bars(self, query: BarQuery) -> pa.Table:
        """OHLCV bars with VWAP; see :func:`k2.query.bars.bars`."""
        on_venue_clock = venue_clock(query.interval, query.exchange)
        snapshot_id = self._snapshot(TRADES, query.as_of)
        if snapshot_id is None:
            return BAR_SCHEMA.empty_table()
        # Intervals that divide an hour count from UTC midnight; whole hours follow the venue's clock.
        seconds = query.interval.seconds
        # The bucket's end, then its start (two), in the order the SQL names them.
        params: list[object] = [seconds, seconds, seconds]
        source = self._bucketed(query, snapshot_id, params, utc=not on_venue_clock)
        sql = f"""
            SELECT symbol, exchange, with_timezone(local_start, zone) AS interval_start,
                   with_timezone(date_add('second', ?, local_start), zone) AS interval_end,
                   min_by(price, {_ORDER_KEY}) AS open, max(price) AS high, min(price) AS low,
                   max_by(price, {_ORDER_KEY}) AS close,
                   CAST(sum(quantity) AS DECIMAL(38, 8)) AS volume, count(*) AS trade_count,
                   CAST(sum(price * quantity) AS DECIMAL(38, 16)) AS notional,
                   min(timestamp) AS first_trade, max(timestamp) AS last_trade
            FROM {source} GROUP BY symbol, exchange, zone, local_start
            ORDER BY symbol, exchange, interval_start
        """
        combined = self.run(sql, params, _COMBINED_SCHEMA)
        return aggregates.finish(combined).cast(BAR_SCHEMA)

    def twap(self, query: BarQuery) -> pa.Table:
        """Time-weighted average prices; see :func:`k2.query.bars.twap` (the same double
        arithmetic, rounded the same way).
        """
        snapshot_id = self._snapshot(TRADES, query.as_of)
        if snapshot_id is None:
            return TWAP_SCHEMA.empty_table()
        seconds = query.interval.seconds
        params: list[object] = [seconds, seconds, seconds]
        source = self._bucketed(query, snapshot_id, params, utc=False)
        following = (
            f"lead(timestamp) OVER (PARTITION BY symbol, exchange, local_start ORDER BY {_ORDER_COLUMNS})"
        )
        held_until = _EPOCH_US.format(f"coalesce({following}, interval_end)")
        sql = f"""
            WITH bounded AS (
                SELECT t.*, with_timezone(local_start, zone) AS interval_start,
                       with_timezone(date_add('second', ?, local_start), zone) AS interval_end
                FROM {source}
            ), held AS (
                SELECT symbol, exchange, interval_start, price,
                       {held_until} - {_EPOCH_US.format("timestamp")} AS micros
                FROM bounded
            )
            SELECT symbol, exchange, interval_start,
                   CAST(round(CASE WHEN sum(micros) > 0
                                   THEN sum(CAST(price AS DOUBLE) * micros) / sum(micros)
                                   ELSE avg(CAST(price AS DOUBLE)) END, 8) AS DECIMAL(18, 8)) AS twap
            FROM held GROUP BY symbol, exchange, interval_start ORDER BY symbol, exchange, interval_start
        """
        return self.run(sql, params, TWAP_SCHEMA)

    def _bucketed(self, query: BarQuery, snapshot_id: int, params: list[object], *, utc: bool) -> str:
        """A relation ``t`` of the selected trades, each with its venue's time ``zone`` and the
        wall-clock start of its bucket of ``?`` seconds, ``local_start`` (the bucket's two ``?``
        are already in ``params``; this appends the rest). With ``utc`` the wall clock is UTC's.
        """
        where = _where(query.selection, params)
        params += _zones(utc=utc)
        wall = "CAST(at_timezone(s.timestamp, z.zone) AS timestamp(6))"
        return f"""(
            SELECT s.symbol, s.exchange, s.timestamp, s.price, s.quantity, s.source_sequence,
                   s.message_id, z.zone, {_BUCKET.format(wall)} AS local_start
            FROM (SELECT * FROM {self._table(TRADES, query.as_of, snapshot_id)} WHERE {where}) s
                 JOIN {_zones_sql()} ON s.exchange = z.exchange
        ) t"""

    def daily_summary(
        self, symbol: str, day: date, exchange: str | None = None, as_of: AsOf = CURRENT
    ) -> DailySummary | None:
        """One symbol's venue-local day; see :func:`k2.query.bars.daily_summary`."""
        return summary_of(self.bars(summary_query(symbol, day, exchange, as_of)), day)

    def probe(self) -> None:
        """Run ``SELECT 1`` on Trino.

        Raises:
            DependencyUnavailableError: Trino does not answer.
        """
        self.run("SELECT 1", [], pa.schema([pa.field("one", pa.int32())]))


def _quoted(name: str) -> str:
    return f'"{name}"'


def _zones(*, utc: bool) -> list[object]:
    """Parameters of :func:`_zones_sql`: each venue's code and time zone (UTC for all when ``utc``)."""
    params: list[object] = []
    for venue in VENUES.values():
        params += [venue.code, "UTC" if utc else venue.timezone]
    return params


def _zones_sql() -> str:
    """A relation ``z(exchange, zone)`` of one row per venue, bound to :func:`_zones`' parameters."""
    return f"(VALUES {', '.join('(?, ?)' for _ in VENUES)}) AS z(exchange, zone)"


def _where(selection: Selection, params: list[object]) -> str:
    """The SQL condition of ``selection`` over a table's columns, appending its values to ``params``."""
    clauses = ["TRUE"]
    if selection.symbols:
        clauses.append(f"symbol IN ({', '.join('?' for _ in selection.symbols)})")
        params.extend(selection.symbols)
    if selection.exchange:
        clauses.append("exchange = ?")
        params.append(selection.exchange.upper())
    if selection.start:
        clauses.append("timestamp >= ?")
        params.append(selection.start)
    if selection.end:
        clauses.append("timestamp < ?")
        params.append(selection.end)
    return " AND ".join(clauses)
