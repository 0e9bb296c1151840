"""SQL building blocks that turn raw text fields into v2 columns in bulk (DuckDB).

Every fragment validates as well as converts: a value that fails gives NULL, and the caller
turns the first failing check of a row into its reject reason.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from k2.domain.identity import KEY_SEPARATOR


def decimal_sql(field: str) -> str:
    """``field`` as DECIMAL(18,8), or NULL unless it is a plain decimal that fits without
    rounding; negative values pass through (callers reject them with their own reason).
    """
    return (
        f"CASE WHEN strpos({field}, '.') = 0 OR length(rtrim({field})) - strpos({field}, '.') <= 8 "
        f"THEN TRY_CAST({field} AS DECIMAL(18,8)) END"
    )


def utc_hours_sql(local: str, rows: str, zone: str) -> str:
    """A query mapping each distinct local hour of ``rows.local`` to its UTC instant ``u`` and
    whether that wall-clock hour exists exactly once in ``zone`` (``wall_ok``; not in a DST gap or
    overlap). Converting per hour rather than per row keeps ICU out of the hot path.
    """
    return f"""
        SELECT h, u,
            timezone({zone}, u) = h AND timezone({zone}, u - INTERVAL 1 HOUR) <> h
                AND timezone({zone}, u + INTERVAL 1 HOUR) <> h AS wall_ok
        FROM (SELECT h, timezone({zone}, h) AS u
              FROM (SELECT DISTINCT date_trunc('hour', {local}) AS h FROM {rows}
                    WHERE {local} IS NOT NULL))
    """


def message_key_sql(*parts: str) -> str:
    """The natural key of :func:`k2.domain.identity.natural_key` over SQL expressions ``parts``."""
    return f" || '{KEY_SEPARATOR}' || ".join(f"CAST({p} AS VARCHAR)" for p in parts)


def message_id_sql(key: str) -> str:
    """The SQL twin of :func:`k2.domain.identity.message_id` over the key expression ``key``."""
    return (
        "(((md5_number(" + key + ") & ~(15::UHUGEINT << 76) & ~(3::UHUGEINT << 62)) "
        "| (3::UHUGEINT << 76) | (2::UHUGEINT << 62))::UUID)::VARCHAR"
    )


def split_rejects(rows: pa.Table, columns: list[str]) -> tuple[pa.Table, pa.Table]:
    """Split ``rows`` on its ``reason`` column into good rows (``columns`` only) and rejects
    (``ordinal, reason``).
    """
    if rows["reason"].null_count == rows.num_rows:
        return rows.select(columns), rows.slice(0, 0).select(["ordinal", "reason"])
    good_mask = pc.is_null(rows["reason"])
    good = rows.filter(good_mask).select(columns)
    rejects = rows.filter(pc.invert(good_mask)).select(["ordinal", "reason"])
    return good, rejects
