"""Convert text fields in bulk when every value of a batch has its canonical form.

A source's SQL conversion (``normalize.py``) accepts every spelling DuckDB reads and gives each
bad row a reason. Real exchange files almost always use one fixed spelling, which numpy and
pyarrow read several times faster. Each function here checks that *every* value has that
spelling and converts them, or returns None, and the caller then runs its SQL for the batch.
The checks only admit values the SQL reads the same way (the tests hold the two paths equal), so
the answer never depends on which path ran.
"""

from __future__ import annotations

import threading
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from k2.ingest.normalize import utc_hours_sql

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3600 * MICROS_PER_SECOND
MICROS_PER_DAY = 24 * MICROS_PER_HOUR
HOURS_PER_DAY = 24
_EPOCH = date(1970, 1, 1)
_DIGIT_0 = ord("0")
#: Unscaled decimals below this are exact when parsed through a double (see :func:`plain_decimals`).
_EXACT_UNSCALED = float(2**50)
#: How many constant columns :func:`repeat_text` keeps (values of the files being read).
_REPEATED_VALUES = 12
_REPEATED: dict[str, pa.Array] = {}
_REPEATED_LOCK = threading.Lock()
#: ``HH:MM:SS`` is 8 characters; a fraction adds a point and 1 to 6 digits.
_CLOCK_WIDTHS = {8, *range(10, 16)}


def uniform_width(values: pa.Array) -> np.ndarray | None:
    """The bytes of string array ``values`` as an ``(n, width)`` matrix, or None unless every
    value has the same length in bytes (and none is null).
    """
    n = len(values)
    if values.null_count or n == 0:
        return None
    offsets = _offsets(values)
    width = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != n * width or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8, count=n * width, offset=int(offsets[0]))
    return data.reshape(n, width)


def us_date_days(values: list[str]) -> np.ndarray | None:
    """Days since 1970-01-01 of ``MM/DD/YYYY`` texts (exactly that: two-digit month and day),
    or None unless all are real dates in that form.
    """
    days = np.empty(len(values), dtype=np.int64)
    for i, text in enumerate(values):
        if len(text) != 10 or text[2] != "/" or text[5] != "/":
            return None
        month, day, year = text[:2], text[3:5], text[6:]
        if not (month.isdigit() and day.isdigit() and year.isdigit() and year.isascii()):
            return None
        try:
            days[i] = (date(int(year), int(month), int(day)) - _EPOCH).days
        except ValueError:
            return None
    return days


def clock_micros(values: pa.Array) -> np.ndarray | None:
    """Microseconds since midnight of ``HH:MM:SS[.f…]`` texts of one width, or None unless every
    value is a valid time in that form (hour < 24, minute and second < 60, 1 to 6 fraction digits).
    """
    chars = uniform_width(values)
    if chars is None or chars.shape[1] not in _CLOCK_WIDTHS:
        return None
    width = chars.shape[1]
    separators = [2, 5, 8][: 3 if width > 8 else 2]
    if not np.all(
        chars[:, separators] == np.array([ord(":"), ord(":"), ord(".")][: len(separators)], np.uint8)
    ):
        return None
    # Bytes below '0' wrap around to large values, so one bound checks that all are digits.
    digits = chars[:, [0, 1, 3, 4, 6, 7, *range(9, width)]] - np.uint8(_DIGIT_0)
    if digits.max() > 9:
        return None
    clock = digits[:, :6].astype(np.int32)
    hours = clock[:, 0] * 10 + clock[:, 1]
    minutes = clock[:, 2] * 10 + clock[:, 3]
    seconds = clock[:, 4] * 10 + clock[:, 5]
    if hours.max() >= 24 or minutes.max() >= 60 or seconds.max() >= 60:
        return None
    micros: np.ndarray = ((hours * 60 + minutes) * 60 + seconds).astype(np.int64) * MICROS_PER_SECOND
    if width > 8:
        # The fraction is read left-aligned: ``.4`` is 400,000 microseconds, as DuckDB's %f reads it.
        fraction = np.zeros(len(micros), dtype=np.int32)
        for i in range(width - 9):
            fraction += digits[:, 6 + i].astype(np.int32) * 10 ** (5 - i)
        micros += fraction
    return micros


def plain_decimals(values: pa.Array, kind: pa.Decimal128Type) -> pa.Array | None:
    """``values`` as decimals of type ``kind``, or None unless every value is a plain decimal:
    digits with at most one point, at most ``precision - scale`` digits before it and ``scale``
    after it (what DuckDB's ``decimal_sql`` reads without rounding, as the same number).

    Values are parsed as doubles and scaled, which is exact while the unscaled number stays
    below 2**50 (the double's error is then under a quarter of a unit); larger ones go
    through Arrow's decimal parser.
    """
    n = len(values)
    if n == 0 or values.null_count:
        return None
    offsets = _offsets(values)
    lengths = np.diff(offsets)
    if lengths.min() == 0:
        return None
    chars = np.frombuffer(
        values.buffers()[2], dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0])
    )
    # Digits and points only: '.' (46) to '9' (57), and the double parse below refuses '/' (47).
    if chars.min() < ord(".") or chars.max() > ord("9"):
        return None
    whole_digits = kind.precision - kind.scale
    if lengths.max() > min(whole_digits, kind.scale + 1):  # else no value can have too many digits
        points = pc.find_substring(values, ".").to_numpy(zero_copy_only=False)
        whole = np.where(points < 0, lengths, points)
        fraction = np.where(points < 0, 0, lengths - points - 1)
        if whole.max() > whole_digits or fraction.max() > kind.scale:
            return None
    try:
        # A '/', a second point or a point alone is not a number: the SQL path judges those rows.
        doubles = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    scaled = doubles * 10.0**kind.scale
    if scaled.max() >= _EXACT_UNSCALED:
        try:
            return pc.cast(values, kind)
        except pa.ArrowInvalid:
            return None
    unscaled = np.zeros((n, 2), dtype=np.int64)  # little-endian 128-bit: low word, then high (0)
    unscaled[:, 0] = np.rint(scaled)
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(unscaled)])


def trim_spaces(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``values`` (text, no nulls) without leading and trailing spaces, as DuckDB's ``trim``, and
    whether each is left non-empty; text without spaces is returned as it is.
    """
    offsets = _offsets(values)
    start, stop = int(offsets[0]), int(offsets[-1])
    if start == stop:
        return values, np.zeros(len(values), dtype=bool)
    chars = np.frombuffer(values.buffers()[2], dtype=np.uint8, count=stop - start, offset=start)
    if not np.count_nonzero(chars == ord(" ")):
        return values, np.diff(offsets) != 0
    trimmed = pc.utf8_trim(values, " ")
    return trimmed, pc.not_equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)


def _offsets(values: pa.Array) -> np.ndarray:
    """The value offsets of string array ``values``."""
    return np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1, offset=values.offset * 4)


def repeat_text(value: str, n: int) -> pa.Array:
    """A string array of ``n`` copies of ``value``. The longest array built for each of the
    values used last is kept and sliced, so a load builds each constant column about once.
    """
    with _REPEATED_LOCK:
        built = _REPEATED.pop(value, None)
        if built is None or len(built) < n:
            encoded = value.encode()
            offsets = np.arange(n + 1, dtype=np.int64) * len(encoded)
            built = pa.Array.from_buffers(
                pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(encoded * n)]
            )
        if len(_REPEATED) >= _REPEATED_VALUES:
            del _REPEATED[next(iter(_REPEATED))]  # the least recently used
        _REPEATED[value] = built
    return built.slice(0, n)


class WallClock:
    """Converts one zone's local wall-clock times to UTC in bulk. Each local hour is converted
    once, by the SQL the row-by-row path uses (``utc_hours_sql``), and remembered; threads may
    share an instance.
    """

    def __init__(self, zone: str) -> None:
        self.zone = zone
        #: Local hour start (microseconds since 1970) -> UTC minus local, None when the hour does
        #: not exist or exists twice in the zone.
        self._shifts: dict[int, int | None] = {}

    def to_utc(
        self,
        duck: duckdb.DuckDBPyConnection,
        day_of_row: np.ndarray,
        day_numbers: np.ndarray,
        micros: np.ndarray,
    ) -> np.ndarray | None:
        """UTC microseconds of local times given as a day (``day_numbers[day_of_row]``, days
        since 1970) and microseconds since midnight, or None if any falls in an hour that does
        not exist or exists twice (a DST edge).
        """
        slots = day_of_row.astype(np.int64) * HOURS_PER_DAY + micros // MICROS_PER_HOUR
        used = np.flatnonzero(np.bincount(slots, minlength=len(day_numbers) * HOURS_PER_DAY))
        starts = (
            day_numbers[used // HOURS_PER_DAY] * MICROS_PER_DAY + (used % HOURS_PER_DAY) * MICROS_PER_HOUR
        ).tolist()
        unknown = [start for start in starts if start not in self._shifts]
        if unknown:
            self._shifts.update(self._convert(duck, unknown))
        shifts = np.zeros(len(day_numbers) * HOURS_PER_DAY, dtype=np.int64)
        for slot, start in zip(used.tolist(), starts, strict=True):
            shift = self._shifts[start]
            if shift is None:
                return None
            shifts[slot] = shift
        utc: np.ndarray = day_numbers[day_of_row] * MICROS_PER_DAY + micros + shifts[slots]
        return utc

    def _convert(self, duck: duckdb.DuckDBPyConnection, starts: list[int]) -> dict[int, int | None]:
        duck.register("k2_local_hours", pa.table({"local_ts": pa.array(starts, pa.timestamp("us"))}))
        try:
            rows = duck.sql(
                "SELECT epoch_us(h), epoch_us(u), wall_ok "
                f"FROM ({utc_hours_sql('local_ts', 'k2_local_hours', '$zone')})",
                params={"zone": self.zone},
            ).fetchall()
        finally:
            duck.unregister("k2_local_hours")
        return {local: utc - local if ok else None for local, utc, ok in rows}
