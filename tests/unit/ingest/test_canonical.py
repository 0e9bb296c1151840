"""The bulk converters of canonical text agree with the SQL path wherever they accept a batch."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.ingest.canonical import (
    MICROS_PER_DAY,
    WallClock,
    clock_micros,
    plain_decimals,
    repeat_text,
    trim_spaces,
    us_date_days,
)
from k2.ingest.normalize import decimal_sql, utc_hours_sql

DUCK = duckdb.connect()
DUCK.execute("SET TimeZone = 'UTC'")
DECIMAL = pa.decimal128(18, 8)
EPOCH = datetime(1970, 1, 1)


def _sql_decimals(values: list[str]) -> list[Decimal | None]:
    DUCK.register("v", pa.table({"f": pa.array(values, pa.string())}))
    return [row[0] for row in DUCK.sql(f"SELECT {decimal_sql('f')} FROM v").fetchall()]


def _sql_clock(values: list[str]) -> list[datetime | None]:
    DUCK.register("v", pa.table({"f": pa.array(values, pa.string())}))
    return [
        row[0]
        for row in DUCK.sql(
            "SELECT coalesce(try_strptime('01/01/2000 ' || f, '%m/%d/%Y %H:%M:%S.%f'), "
            "try_strptime('01/01/2000 ' || f, '%m/%d/%Y %H:%M:%S')) FROM v"
        ).fetchall()
    ]


plain = st.builds(
    lambda whole, fraction: whole + (f".{fraction}" if fraction else ""),
    st.from_regex(r"[0-9]{1,10}", fullmatch=True),
    st.from_regex(r"[0-9]{0,8}", fullmatch=True),
)
noisy = st.one_of(
    plain,
    st.sampled_from(["", ".", "1.", ".5", "-1.5", "+2", " 3", "1e3", "1.123456789", "1.500000000", "1.2.3"]),
    st.from_regex(r"[0-9]{11,12}(\.[0-9])?", fullmatch=True),
    st.text(alphabet="0123456789.e-+ ", max_size=12),
)


@settings(max_examples=300)
@given(st.lists(plain, min_size=1, max_size=30))
def test_plain_decimals_are_read_as_the_sql_reads_them(values: list[str]) -> None:
    """Plain decimals, large or small, convert exactly to what ``decimal_sql`` gives."""
    converted = plain_decimals(pa.array(values, pa.string()), DECIMAL)
    assert converted is not None
    assert converted.to_pylist() == _sql_decimals(values)


@settings(max_examples=300)
@given(st.lists(noisy, min_size=1, max_size=8))
def test_decimals_are_refused_or_read_as_the_sql_reads_them(values: list[str]) -> None:
    """Any other spelling sends the batch to the SQL path, unless the SQL reads it identically."""
    converted = plain_decimals(pa.array(values, pa.string()), DECIMAL)
    if converted is not None:
        assert converted.to_pylist() == _sql_decimals(values)


def test_decimals_beyond_exact_doubles_use_the_decimal_parser() -> None:
    """Unscaled values past 2**50 are parsed as decimals, not through a double."""
    values = ["9999999999.99999999", "1234567890.12345678", "0.00000001", "1.", ".5"]
    converted = plain_decimals(pa.array(values), DECIMAL)
    assert converted is not None
    assert converted.to_pylist() == [Decimal(v) for v in values] == _sql_decimals(values)


clock = st.builds(
    lambda h, m, s, fraction: f"{h:02d}:{m:02d}:{s:02d}" + fraction,
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", ".1", ".12", ".123", ".1234", ".12345", ".123456"]),
)


@given(st.lists(clock, min_size=1, max_size=20))
def test_clock_times_of_one_width_are_read_as_strptime_reads_them(values: list[str]) -> None:
    """``HH:MM:SS[.f…]`` of one width gives the microseconds DuckDB's strptime gives, or None."""
    micros = clock_micros(pa.array(values, pa.string()))
    if len({len(v) for v in values}) > 1:
        assert micros is None
        return
    assert micros is not None
    expected = [t - datetime(2000, 1, 1) for t in _sql_clock(values) if t is not None]
    assert [timedelta(microseconds=int(m)) for m in micros] == expected


@pytest.mark.parametrize(
    "values",
    [["24:00:00.000"], ["10:60:00.000"], ["10:00:60.000"], ["10:00:00,000"], ["1:00:00.000"], ["10:0a:00"]],
)
def test_clock_times_out_of_range_or_misspelt_are_refused(values: list[str]) -> None:
    """Anything strptime might judge differently is left to the SQL path."""
    assert clock_micros(pa.array(values, pa.string())) is None


def test_us_dates_need_two_digit_month_and_day_and_a_real_date() -> None:
    """Only real ``MM/DD/YYYY`` dates convert; the SQL path judges the rest."""
    days = us_date_days(["03/10/2014", "12/31/1999"])
    assert days is not None
    assert days.tolist() == [
        (date(2014, 3, 10) - date(1970, 1, 1)).days,
        (date(1999, 12, 31) - date(1970, 1, 1)).days,
    ]
    for bad in (["3/10/2014"], ["02/30/2014"], ["13/01/2014"], ["03-10-2014"], ["03/10/14"], ["03/10/0000"]):
        assert us_date_days(bad) is None


@settings(max_examples=200)
@given(
    st.lists(
        st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2030, 12, 31)), min_size=1, max_size=6
    )
)
def test_wall_clock_conversion_matches_the_per_row_sql(locals_: list[datetime]) -> None:
    """Per-hour conversion gives each row the UTC instant the row-by-row SQL gives, and refuses
    a batch with a time that does not exist or exists twice (DST edges).
    """
    days = sorted({(t.date() - date(1970, 1, 1)).days for t in locals_})
    day_of_row = np.array([days.index((t.date() - date(1970, 1, 1)).days) for t in locals_])
    micros = np.array(
        [
            (t - t.replace(hour=0, minute=0, second=0, microsecond=0)) // timedelta(microseconds=1)
            for t in locals_
        ]
    )
    utc = WallClock("Australia/Sydney").to_utc(DUCK, day_of_row, np.array(days, dtype=np.int64), micros)
    DUCK.register("t", pa.table({"local_ts": pa.array(locals_, pa.timestamp("us"))}))
    rows = DUCK.sql(
        "SELECT epoch_us(hr.u + (t.local_ts - hr.h)), hr.wall_ok FROM t JOIN "
        f"({utc_hours_sql('local_ts', 't', '$zone')}) hr ON hr.h = date_trunc('hour', t.local_ts)",
        params={"zone": "Australia/Sydney"},
    ).fetchall()
    if all(ok for _, ok in rows):
        assert utc is not None
        assert utc.tolist() == [expected for expected, _ in rows]
    else:
        assert utc is None


def test_wall_clock_conversion_keeps_rows_on_their_own_day() -> None:
    """Each row keeps its local day: midnight of the next day is a whole day later."""
    micros = np.array([0, 0], dtype=np.int64)
    utc = WallClock("UTC").to_utc(DUCK, np.array([0, 1]), np.array([19_000, 19_001], dtype=np.int64), micros)
    assert utc is not None
    assert utc.tolist() == [19_000 * MICROS_PER_DAY, 19_001 * MICROS_PER_DAY]


def test_wall_clock_remembers_hours_it_converted() -> None:
    """A second batch in hours seen before converts the same without asking DuckDB again."""
    clock = WallClock("Australia/Sydney")
    days = np.array([(date(2014, 3, 10) - date(1970, 1, 1)).days], dtype=np.int64)
    micros = np.array([10 * 3600 * 1_000_000, 10 * 3600 * 1_000_000 + 5], dtype=np.int64)
    first = clock.to_utc(DUCK, np.zeros(2, dtype=np.int64), days, micros)
    closed = duckdb.connect()
    closed.close()
    again = clock.to_utc(closed, np.zeros(2, dtype=np.int64), days, micros)
    assert first is not None
    assert again is not None
    assert again.tolist() == first.tolist()


@given(st.lists(st.text(alphabet=" \tXY0", max_size=4), min_size=1, max_size=12))
def test_trimming_is_duckdbs_trim(values: list[str]) -> None:
    """Spaces (only spaces) go from both ends, as DuckDB's ``trim`` removes them."""
    trimmed, present = trim_spaces(pa.array(values, pa.string()))
    DUCK.register("v", pa.table({"f": pa.array(values, pa.string())}))
    expected = [row[0] for row in DUCK.sql("SELECT trim(f) FROM v").fetchall()]
    assert trimmed.to_pylist() == expected
    assert present.tolist() == [text != "" for text in expected]


def test_repeated_text_is_a_plain_string_array() -> None:
    """Constant columns are ordinary string arrays, whatever was built before."""
    assert repeat_text("ASX", 3).to_pylist() == ["ASX"] * 3
    assert repeat_text("ASX", 5).to_pylist() == ["ASX"] * 5
    assert repeat_text("ASX", 2).to_pylist() == ["ASX"] * 2
    assert repeat_text("", 2).to_pylist() == ["", ""]
    assert repeat_text("ASX", 0).type == pa.string()
