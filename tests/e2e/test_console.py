"""The web console at /ui in a real browser, against a real `k2 serve` over the ASX sample: what a
user sees on the page equals what the API answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from k2.lake.maintenance import tag
from k2.lake.tables import TRADES
from k2.testing import EmbeddedLake, make_trade_rows, trade_row
from tests.fixtures.servers import k2_serve

pytestmark = pytest.mark.e2e

KEY = "console-key"
#: The page and the tests' own reads share one key: room for all of them in a minute. The page is
#: compared with the API's whole answers, so no shedding under a busy machine's load leaves the
#: prevailing quotes out of one of them (tests/e2e/test_overload.py tests the shedding).
SERVED = {
    "K2_API_KEYS": f"console:{KEY}",
    "K2_API_RATE_LIMIT": "10000/minute",
    "K2_DEGRADATION_ENABLED": "false",
}
SYDNEY = ZoneInfo("Australia/Sydney")
#: Trades per page of the tape (the console's TAPE_PAGE).
TAPE_PAGE = 50
#: BHP's first day in the sample.
DAY = "2014-03-10"
#: A late BHP trade loaded after the sample: the lake's latest snapshot has one more minute bar
#: than the one before it.
LATE = datetime(2014, 3, 10, 6, 30, tzinfo=UTC)


def _sydney_day(day: str) -> tuple[str, str]:
    """The UTC bounds of a venue-local (Sydney) day, midnight to midnight."""
    midnight = datetime.combine(date.fromisoformat(day), time(0), SYDNEY)
    return midnight.isoformat(), (midnight + timedelta(days=1)).astimezone(SYDNEY).isoformat()


@dataclass(frozen=True)
class Console:
    """A served lake: the server's URL and a client of its API with the right key."""

    url: str
    api: httpx.Client

    def bars(
        self,
        interval: str = "1m",
        snapshot: int | None = None,
        symbol: str = "BHP",
        day: str = DAY,
        span: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        start, end = span or _sydney_day(day)
        body = {
            "symbols": [symbol],
            "exchange": "ASX",
            "interval": interval,
            "metrics": ["ohlcv", "vwap", "twap"],
            "start_time": start,
            "end_time": end,
            "as_of_snapshot": snapshot,
        }
        answer = self.api.post("/v1/aggregations", json=body)
        answer.raise_for_status()
        rows: list[dict[str, Any]] = answer.json()["data"]
        return rows

    def trades(self, limit: int, *, with_quotes: bool = True) -> list[dict[str, Any]]:
        start, end = _sydney_day(DAY)
        params = {"symbol": "BHP", "exchange": "ASX", "start_time": start, "end_time": end}
        answer = self.api.get("/v1/trades", params={**params, "limit": limit, "with_quotes": with_quotes})
        answer.raise_for_status()
        rows: list[dict[str, Any]] = answer.json()["data"]
        return rows

    def quote_at(self, instant: str) -> tuple[str, str]:
        """The mid and spread of the last two-sided BHP quote before ``instant``, as the page
        writes them: the mid with one place more than the prices, the spread with theirs.
        """
        start, _ = _sydney_day(DAY)
        body = {"symbols": ["BHP"], "exchange": "ASX", "start_time": start, "end_time": instant}
        answer = self.api.post("/v1/quotes/query", json={**body, "limit": 100_000})
        answer.raise_for_status()
        last = [q for q in answer.json()["data"] if q["bid_price"] and q["ask_price"]][-1]
        bid, ask = Decimal(last["bid_price"]), Decimal(last["ask_price"])
        unit = Decimal(1).scaleb(min(bid.as_tuple().exponent, ask.as_tuple().exponent))  # type: ignore[arg-type]
        return str(((bid + ask) / 2).quantize(unit / 10)), str((ask - bid).quantize(unit))

    def snapshots(self) -> list[dict[str, Any]]:
        """The trades table's snapshots, newest first."""
        answer = self.api.get("/v1/snapshots", params={"table": "trades"})
        answer.raise_for_status()
        listed: list[dict[str, Any]] = answer.json()["data"]
        return listed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, asx_sample: Path) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console") / "lake"
    lake = EmbeddedLake.create(data_dir)
    try:
        lake.load_asx(asx_sample)
        tag(lake.writer.table(TRADES), "sample")
        late = trade_row("BHP", LATE, "36.5", "1000", sequence=17_001, trade_conditions=["XT"])
        lake.writer.append(TRADES, make_trade_rows([late]), {"k2.load.id": "late-trade"})
    finally:
        lake.close()
    with (
        k2_serve(data_dir, SERVED) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=30) as api,
    ):
        yield Console(server.url, api)


def _sign_in(page: Page, url: str, key: str = KEY) -> None:
    page.goto(f"{url}/ui/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use this key").click()


def _open_bhp(page: Page, served: Console) -> None:
    _sign_in(page, served.url)
    page.get_by_label("Symbol").select_option("ASX:BHP")
    page.get_by_label("Day (venue time)").select_option(DAY)
    expect(page.locator("#chart-title")).to_contain_text(f"BHP on ASX, {DAY}")


def _clock(iso: str) -> str:
    """What the page shows for an API time: the venue's (Sydney) wall clock to the millisecond."""
    return datetime.fromisoformat(iso).astimezone(SYDNEY).strftime("%H:%M:%S.%f")[:12]


def _tape_rows(trades: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            _clock(t["timestamp"]),
            t["price"],
            t["quantity"],
            " ".join(t["trade_conditions"]),
            t["bid_price"] or "",
            t["ask_price"] or "",
        ]
        for t in trades
    ]


def _expect_tape(page: Page, trades: list[dict[str, Any]], offset: int = 0) -> None:
    rows = page.locator("#tape-rows tr")
    for index, expected in enumerate(_tape_rows(trades)):
        row = rows.nth(offset + index)
        expect(row.locator("td")).to_have_text(expected)
        expect(row.locator("time")).to_have_attribute("datetime", trades[index]["timestamp"])


def test_market_view_shows_the_apis_bars_and_trades(page: Page, served: Console, screenshots: Path) -> None:
    """BHP on 2014-03-10 in 1-minute bars: as many candles as the API has bars, the first with the
    API's OHLC, and a tape starting with the API's first trades, on the venue's clock.
    """
    bars = served.bars()
    trades = served.trades(limit=5)
    _open_bhp(page, served)

    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(bars)))
    page.get_by_text("Bars as a table").click()
    expect(page.locator("#bars-rows tr")).to_have_count(len(bars))
    first = bars[0]
    expect(page.locator("#bars-rows tr").first.locator("td")).to_have_text(
        [
            datetime.fromisoformat(first["interval_start"]).astimezone(SYDNEY).strftime("%Y-%m-%d %H:%M"),
            *(first[k] for k in ("open", "high", "low", "close", "volume", "vwap", "twap")),
            *served.quote_at(first["interval_end"]),
        ]
    )
    _expect_tape(page, trades)
    expect(page.locator("#health")).to_contain_text("Ready: catalog")
    expect(page.locator("#health")).to_contain_text("breakers closed")
    page.screenshot(path=screenshots / "market.png")


def test_the_tape_pages_through_the_cursor(page: Page, served: Console) -> None:
    """ "More trades" appends the API's next page after the first."""
    trades = served.trades(limit=TAPE_PAGE + 3)
    _open_bhp(page, served)
    expect(page.locator("#tape-rows tr")).to_have_count(TAPE_PAGE)
    page.get_by_role("button", name="More trades").click()
    expect(page.locator("#tape-rows tr")).to_have_count(2 * TAPE_PAGE)
    _expect_tape(page, trades[TAPE_PAGE:], offset=TAPE_PAGE)


def test_pickers_work_from_the_keyboard(page: Page, served: Console) -> None:
    """Tabbing to the bar interval and pressing the down arrow shows 5-minute bars."""
    five_minute = served.bars("5m")
    _open_bhp(page, served)
    page.get_by_label("Bars", exact=True).focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#chart-title")).to_contain_text(f"{len(five_minute)} 5-minute bars")
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(five_minute)))
    assert "interval=5m" in page.url


def test_an_older_snapshot_changes_the_view_and_the_url_shares_it(
    page: Page, served: Console, screenshots: Path
) -> None:
    """Choosing the snapshot before the late trade shows that snapshot's bars (one fewer), and the
    page's URL opened in a new tab shows the same view once given the key.
    """
    latest, before = served.snapshots()[:2]
    older = before["snapshot_id"]
    then = served.bars(snapshot=older)
    assert len(then) == len(served.bars(snapshot=latest["snapshot_id"])) - 1
    _open_bhp(page, served)
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(then) + 1))

    listed = page.get_by_label("As of", exact=True).locator("option")
    expect(listed).to_have_count(5)  # the latest, each snapshot, the tag, a point in time
    expect(listed.nth(2)).to_contain_text(f"append +{before['added_records']} rows")
    expect(listed.nth(2)).to_contain_text(f"load {before['load_id']} · tags sample")
    page.get_by_label("As of", exact=True).select_option(str(older))
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(then)))
    expect(page.locator("#chart-title")).to_contain_text(f"{len(then)} 1-minute bars")
    page.screenshot(path=screenshots / "older-snapshot.png")

    shared = page.url
    assert f"snapshot={older}" in shared
    again = page.context.new_page()  # a new tab: its session storage holds no key yet
    again.goto(shared)
    again.get_by_label("API key").fill(KEY)
    again.get_by_role("button", name="Use this key").click()
    expect(again.get_by_label("As of", exact=True)).to_have_value(str(older))
    expect(again.get_by_label("Day (venue time)")).to_have_value(DAY)
    expect(again.locator("#chart")).to_have_attribute("data-candles", str(len(then)))


def test_a_tag_a_time_and_the_timeline_travel_like_a_snapshot(page: Page, served: Console) -> None:
    """The tag on the sample's snapshot, a time between the two commits, and the timeline's button
    for the older snapshot all show that snapshot's bars; the URL names the tag or the time.
    """
    latest, before = served.snapshots()[:2]
    then = len(served.bars(snapshot=before["snapshot_id"]))
    _open_bhp(page, served)
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then + 1))
    timeline = page.locator("#history-rows tr")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1).locator("td").nth(1)).to_have_text(str(before["snapshot_id"]))
    expect(timeline.nth(1).locator("td").nth(5)).to_have_text(f"load {before['load_id']}")
    expect(timeline.nth(1).locator("td").nth(7)).to_have_text("sample")

    page.get_by_label("As of", exact=True).select_option("tag:sample")
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then))
    assert "tag=sample" in page.url

    page.get_by_label("As of", exact=True).select_option("Latest")
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then + 1))
    committed = [datetime.fromisoformat(s["committed_at"]) for s in (before, latest)]
    between = committed[0] + (committed[1] - committed[0]) / 2
    page.get_by_label("As of", exact=True).select_option("A point in time…")
    typed = between.astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]  # the browser's clock is this one
    page.get_by_label("As of this time (your clock)").fill(typed)
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then))
    assert "at=" in page.url

    page.get_by_label("As of", exact=True).select_option("Latest")
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then + 1))
    timeline.nth(1).get_by_role("button", name="View as of this").click()
    expect(page.get_by_label("As of", exact=True)).to_have_value(str(before["snapshot_id"]))
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(then))


def test_a_range_of_days_shows_their_bars_and_trades(page: Page, served: Console) -> None:
    """Through a later day, the chart holds the API's bars over every day between, the tape starts
    with the first day's first trades, and the URL names the range."""
    start, _ = _sydney_day(DAY)
    _, end = _sydney_day("2014-03-12")
    bars = served.bars(span=(start, end))
    assert len(bars) > len(served.bars()), "the range holds more than its first day"
    _open_bhp(page, served)
    page.get_by_label("Through (venue time)").select_option("2014-03-12")
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(bars)))
    expect(page.locator("#chart-title")).to_contain_text(f"BHP on ASX, {DAY} to 2014-03-12: {len(bars)} ")
    _expect_tape(page, served.trades(limit=3))
    assert "through=2014-03-12" in page.url


def test_zooming_into_the_chart_fetches_finer_bars(page: Page, served: Console, screenshots: Path) -> None:
    """Wheeling into the 1-minute chart shows bars shorter than a minute for the range in view:
    as many candles as the API has bars of that interval over that range, the first with its OHLC;
    "Whole day" goes back to the day's 1-minute bars.
    """
    day_bars = served.bars()
    _open_bhp(page, served)
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-candles", str(len(day_bars)))
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    for _ in range(40):
        page.mouse.wheel(0, -600)
        page.wait_for_timeout(50)
        if (chart.get_attribute("data-interval") or "").endswith("s"):
            break
    expect(chart).to_have_attribute("data-interval", re.compile(r"^\d+s$"))
    expect(page.get_by_role("button", name="Whole day")).to_be_visible()
    expect(chart).not_to_have_attribute("aria-busy", "true")  # the last fetch the zoom asked for is in
    interval, start, end = (chart.get_attribute(name) for name in ("data-interval", "data-start", "data-end"))
    assert interval is not None
    assert start is not None
    assert end is not None
    finer = served.bars(interval, span=(start, end))
    assert finer, "the zoomed range holds trades"
    expect(chart).to_have_attribute("data-candles", str(len(finer)))
    page.get_by_text("Bars as a table").click()
    first = finer[0]
    expect(page.locator("#bars-rows tr").first.locator("td").nth(1)).to_have_text(first["open"])
    expect(page.locator("#bars-rows tr").first.locator("td").nth(4)).to_have_text(first["close"])
    expect(page.locator("#chart-title")).to_contain_text(f"{len(finer)} ")
    page.screenshot(path=screenshots / "zoomed.png")

    page.get_by_role("button", name="Whole day").click()
    expect(chart).to_have_attribute("data-interval", "1m")
    expect(chart).to_have_attribute("data-candles", str(len(day_bars)))


def test_pipeline_health_shows_the_lake_and_what_the_embedded_profile_lacks(
    page: Page, served: Console, screenshots: Path
) -> None:
    """The panel shows each table's snapshots, files and fullest partition as /v1/pipeline reads
    them, this API's degradation level, and why there is no stream part; "Follow live" is off."""
    answer = served.api.get("/v1/pipeline")
    answer.raise_for_status()
    health = answer.json()["data"]
    _sign_in(page, served.url)
    panel = page.locator("#pipeline-body")
    expect(panel).to_have_attribute("data-profile", "embedded")
    for table in health["lake"]:
        cells = page.locator(f"#pipeline-lake tr[data-table={table['table']}] td")
        expect(cells.nth(3)).to_have_text(str(table["snapshots"]))
        expect(cells.nth(5)).to_have_text(str(table["data_files"]))
        expect(cells.nth(7)).to_have_text(str(table["max_files_per_partition"]))
    expect(panel).to_contain_text("API: degradation level 0")
    expect(panel).to_contain_text(f"Stream: none: {health['stream_reason']}")
    expect(page.get_by_label("Follow live")).to_be_disabled()
    panel.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "pipeline-embedded.png")


def test_a_wrong_key_says_so(page: Page, served: Console, screenshots: Path) -> None:
    """A key the API refuses brings the key form back with the API's message."""
    _sign_in(page, served.url, key="not-a-key")
    expect(page.locator("#key-reason")).to_have_text(
        "The API refused the key: the X-API-Key header does not hold a valid key"
    )
    expect(page.get_by_label("API key")).to_be_focused()
    page.screenshot(path=screenshots / "wrong-key.png")


def test_a_failed_call_shows_the_error_bodys_message(page: Page, served: Console, screenshots: Path) -> None:
    """When the bars call fails, the page shows the message and correlation id of its error body."""
    _sign_in(page, served.url)
    expect(page.locator("#chart")).to_have_attribute("data-candles", re.compile(r"\d+"))
    body = {"error": {"code": "RETRY_LATER", "message": "the lake is busy", "correlation_id": "c0ffee"}}
    page.route("**/v1/aggregations", lambda route: route.fulfill(status=503, json=body))
    page.get_by_label("Bars", exact=True).select_option("1h")
    expect(page.get_by_role("alert")).to_have_text("the lake is busy (RETRY_LATER, correlation id c0ffee)")
    page.screenshot(path=screenshots / "failed-call.png")


def test_an_empty_lake_says_how_to_fill_it(page: Page, tmp_path: Path, screenshots: Path) -> None:
    """On a lake with no trades the page says how to load some instead of a blank chart."""
    data_dir = tmp_path / "lake"
    EmbeddedLake.create(data_dir).close()
    with k2_serve(data_dir, SERVED) as server:
        _sign_in(page, server.url)
        expect(page.locator("#empty")).to_contain_text("The lake holds no trades yet")
        expect(page.locator("#views")).to_be_hidden()
        trades = page.locator("#pipeline-lake tr[data-table=trades] td")
        expect(trades.nth(1)).to_have_text("not created yet")
        page.screenshot(path=screenshots / "empty-lake.png")


def test_the_coverage_calendar_lists_the_apis_days_and_opens_one(
    page: Page, served: Console, screenshots: Path
) -> None:
    """Every symbol's days with trades are buttons naming the API's count, weekdays without trades
    say missing, and choosing a day shows that symbol's day in the market view.
    """
    answer = served.api.get("/v1/coverage")
    answer.raise_for_status()
    days = answer.json()["data"]
    traded = [d for d in days if d["rows"] > 0]
    _sign_in(page, served.url)
    calendar = page.locator("#coverage")
    expect(calendar.locator("tbody tr")).to_have_count(len({(d["exchange"], d["symbol"]) for d in days}))
    expect(calendar.get_by_role("button")).to_have_count(len(traded))
    expect(calendar.locator("td.missing")).to_have_count(len(days) - len(traded))
    for day in traded:
        name = f"{day['symbol']} on {day['day']}: {day['rows']} trades"
        expect(calendar.get_by_role("button", name=name, exact=True)).to_have_count(1)

    loads = served.api.get("/v1/loads", params={"table": "trades", "limit": 10}).json()["data"]
    assert loads, "the sample's load is listed"
    listed = page.locator("#loads-rows tr")
    expect(listed).to_have_count(len(loads))
    for index, load in enumerate(loads):
        rejected = "not recorded" if load["rows_rejected"] is None else str(load["rows_rejected"])
        expect(listed.nth(index).locator("td").nth(0)).to_have_text(load["load_id"])
        expect(listed.nth(index).locator("td").nth(3)).to_have_text(str(load["rows_written"]))
        expect(listed.nth(index).locator("td").nth(4)).to_have_text(rejected)
        expect(listed.nth(index).locator("td").nth(5)).to_have_text(load["reject_file"] or "")

    rio = next(d for d in reversed(traded) if d["symbol"] == "RIO")
    calendar.get_by_role("button", name=f"RIO on {rio['day']}:").click()
    expect(page.locator("#chart-title")).to_contain_text(f"RIO on ASX, {rio['day']}")
    expect(page.locator("#chart")).to_have_attribute(
        "data-candles", str(len(served.bars(symbol="RIO", day=rio["day"])))
    )
    calendar.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "coverage.png")


def test_replay_plays_the_day_into_the_chart_and_the_tape(
    page: Page, served: Console, screenshots: Path
) -> None:
    """Played to the end, a replay has formed as many candles as the API has bars, counted every
    trade of the day, and left the day's last trades on top of the tape; pausing holds it.
    """
    bars = served.bars()
    total = served.trades(limit=100_000, with_quotes=False)
    _open_bhp(page, served)
    page.get_by_label("Speed").select_option("3600")
    play = page.get_by_role("button", name="Play")
    play.click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.screenshot(path=screenshots / "replay-paused.png")
    page.get_by_role("button", name="Resume").click()

    expect(page.locator("#replay-status")).to_have_text(
        f"Replay finished: {len(total)} of {len(total)} trades.", timeout=120_000
    )
    expect(page.locator("#chart")).to_have_attribute("data-candles", str(len(bars)))
    expect(page.locator("#replay-progress")).to_have_js_property("value", 1)
    for index, trade in enumerate(reversed(total[-3:])):  # newest first; a replay has no prevailing quotes
        expected = [_clock(trade["timestamp"]), trade["price"], trade["quantity"]]
        expect(page.locator("#tape-rows tr").nth(index).locator("td")).to_have_text(
            [*expected, " ".join(trade["trade_conditions"]), "", ""]
        )
    page.screenshot(path=screenshots / "replay-done.png")
