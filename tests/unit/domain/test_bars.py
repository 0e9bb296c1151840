import pytest

from k2.domain.bars import Interval
from k2.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1), ("5m", 300), ("15m", 900), ("1h", 3600), ("1d", 86400)]
)
def test_parse_known_intervals(text: str, seconds: int) -> None:
    """The brief's bar sizes parse to their length."""
    assert Interval.parse(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "0m", "7m", "2d", "1w", "m5", "1.5h"])
def test_parse_rejects_intervals_that_do_not_tile_a_day(text: str) -> None:
    """Intervals must be at most a day and divide it evenly."""
    with pytest.raises(InvalidInputError):
        Interval.parse(text)
