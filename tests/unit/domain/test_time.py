from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k2.domain.time import local_day_bounds, local_to_utc, parse_instant, to_micros
from k2.errors import InvalidInputError

SYDNEY = ZoneInfo("Australia/Sydney")


def test_asx_march_2014_is_daylight_time() -> None:
    """ASX wall clock in March 2014 is AEDT, eleven hours ahead of UTC."""
    assert local_to_utc(datetime(2014, 3, 10, 10, 0), SYDNEY) == datetime(2014, 3, 9, 23, 0, tzinfo=UTC)


def test_spring_forward_gap_is_rejected() -> None:
    """02:30 on the first Sunday of October 2014 never happened in Sydney."""
    with pytest.raises(InvalidInputError, match="ambiguous or does not exist"):
        local_to_utc(datetime(2014, 10, 5, 2, 30), SYDNEY)


def test_fall_back_hour_is_rejected_as_ambiguous() -> None:
    """02:30 on the first Sunday of April 2014 happened twice in Sydney."""
    with pytest.raises(InvalidInputError, match="ambiguous"):
        local_to_utc(datetime(2014, 4, 6, 2, 30), SYDNEY)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)))
def test_utc_to_local_and_back_is_identity_unless_ambiguous(instant: datetime) -> None:
    """Converting an instant to Sydney wall clock and back gives the instant again, except
    in the fall-back hour, which is refused rather than guessed."""
    local = instant.astimezone(SYDNEY).replace(tzinfo=None)
    try:
        back = local_to_utc(local, SYDNEY)
    except InvalidInputError:
        earlier = (instant - timedelta(hours=1)).astimezone(SYDNEY).replace(tzinfo=None)
        later = (instant + timedelta(hours=1)).astimezone(SYDNEY).replace(tzinfo=None)
        assert local in (earlier, later)
    else:
        assert back == instant


def test_local_day_bounds_follow_the_venue_day() -> None:
    """The ASX trading day 2014-03-10 spans 13:00 UTC on the 9th to 13:00 UTC on the 10th."""
    assert local_day_bounds(date(2014, 3, 10), SYDNEY) == (
        datetime(2014, 3, 9, 13, tzinfo=UTC),
        datetime(2014, 3, 10, 13, tzinfo=UTC),
    )


def test_parse_instant_reads_offsets_and_defaults_to_utc() -> None:
    """An offset is honoured; no offset means UTC."""
    assert parse_instant("2014-03-10T10:00:00+11:00") == datetime(2014, 3, 9, 23, tzinfo=UTC)
    assert parse_instant("2014-03-10") == datetime(2014, 3, 10, tzinfo=UTC)
    assert parse_instant("2014-03-10T01:02:03Z") == datetime(2014, 3, 10, 1, 2, 3, tzinfo=UTC)


def test_parse_instant_rejects_garbage() -> None:
    """A value that is not ISO-8601 is a clear input error."""
    with pytest.raises(InvalidInputError):
        parse_instant("10/03/2014")


@given(st.integers(min_value=0, max_value=4_000_000_000_000_000))
def test_micros_are_exact(micros: int) -> None:
    """An instant's microseconds since the epoch are exact, far from the epoch too."""
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)) == micros
