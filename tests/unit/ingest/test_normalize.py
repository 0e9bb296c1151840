from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k2.domain.identity import message_id
from k2.domain.time import local_to_utc
from k2.errors import InvalidInputError
from k2.ingest.normalize import decimal_sql, message_id_sql, message_key_sql, utc_hours_sql

DUCK = duckdb.connect()
DUCK.execute("SET TimeZone = 'UTC'")


TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)


@given(st.lists(TEXT, min_size=1, max_size=4))
def test_sql_message_id_matches_python(parts: list[str]) -> None:
    """Bulk ids computed in DuckDB equal the ids the Python function gives for the same key."""
    params = {f"p{i}": p for i, p in enumerate(parts)}
    sql = f"SELECT {message_id_sql(message_key_sql(*(f'$p{i}' for i in range(len(parts)))))}"
    assert DUCK.execute(sql, params).fetchone() == (message_id(*parts),)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("36.667", "36.667"), ("0.0", "0"), ("20000", "20000"), ("0.12345678", "0.12345678")],
)
def test_decimal_accepts_plain_decimals(text: str, expected: str) -> None:
    """Plain non-negative decimals convert exactly."""
    assert DUCK.execute(f"SELECT {decimal_sql('$v')}", {"v": text}).fetchone() == (Decimal(expected),)


@pytest.mark.parametrize("text", ["abc", "1.123456789", "", "12345678901.5"])
def test_decimal_rejects_what_would_be_rounded_or_is_not_a_number(text: str) -> None:
    """Over-precise, oversized or non-numeric values give NULL (a reject), never a rounded value."""
    assert DUCK.execute(f"SELECT {decimal_sql('$v')}", {"v": text}).fetchone() == (None,)


SYDNEY = ZoneInfo("Australia/Sydney")


@settings(max_examples=300)
@given(st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2030, 12, 31)))
def test_bulk_wall_clock_conversion_matches_zoneinfo(local: datetime) -> None:
    """The per-hour SQL conversion used by ingest agrees with zoneinfo, including DST edges."""
    local = local.replace(microsecond=local.microsecond // 1000 * 1000)
    DUCK.execute("CREATE OR REPLACE TEMP TABLE t AS SELECT CAST($l AS TIMESTAMP) AS local_ts", {"l": local})
    row = DUCK.execute(
        f"SELECT hr.u + (t.local_ts - hr.h), hr.wall_ok "
        f"FROM t JOIN ({utc_hours_sql('local_ts', 't', '$zone')}) hr "
        "ON hr.h = date_trunc('hour', t.local_ts)",
        {"zone": SYDNEY.key},
    ).fetchone()
    assert row is not None
    utc, ok = row
    try:
        expected = local_to_utc(local, SYDNEY)
    except InvalidInputError:
        assert ok is False
    else:
        assert ok is True
        assert utc == expected
        assert utc - expected == timedelta(0)
