"""The web console's first useful paint, beside the API calls it needs.

``k2 serve`` runs over the ASX sample's lake; Debian's headless Chromium (launched as
:mod:`k2.testing.browser` says) opens ``/ui/`` in a fresh context each run (empty HTTP cache and
session storage, new connections), the API key put in session storage before the page's script
runs. The first useful paint is the page's ``k2-first-useful-paint`` performance mark: the chart
holds the day's candles and the tape its first trades. Two ways in: a shared link (symbol, venue,
day and interval in the URL) and a first visit (no parameters: the first symbol's last day).

The limit is the floor any page on this API has: the requests the console makes before it can
paint (the page, its script and style, then the API calls), made by a Python client with new
connections in the same order, in parallel where the page makes them in parallel (a shared link
asks for its market view as soon as the venues' clocks are in, beside the pickers' lists; a first
visit needs the symbols and the first symbol's days first). K2 / limit is
what the browser adds: parsing and running the bundle, laying out and drawing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import httpx
from playwright.sync_api import Browser, sync_playwright

from benchmarks.api.latency import ensure_asx_lake
from benchmarks.api.serving import KEY, iso, serve
from benchmarks.common import Sizes, log, percentile, timed_ms
from benchmarks.results import Measure, Section, Table, Target, Unit
from k2.domain.time import local_day_bounds
from k2.domain.venues import venue
from k2.testing.browser import launch_options

NAME = "console"
TITLE = "Web console: first useful paint"
SYMBOL, EXCHANGE, DAY = "BHP", "ASX", date(2014, 3, 10)
#: The issue's target for the first useful paint on this machine.
TARGET_MS = 1000.0
WARMUP = 2
RUNS = {"quick": 5, "full": 20}


@dataclass(frozen=True, slots=True)
class View:
    """A way into the console: its URL's query string and the requests it must make to paint."""

    name: str
    query: str
    stages: tuple[tuple[Callable[[httpx.Client], object], ...], ...]


def _get(path: str, params: Mapping[str, str | int] | None = None) -> Callable[[httpx.Client], object]:
    return lambda client: client.get(path, params=params).raise_for_status()


def _post(path: str, body: Mapping[str, object]) -> Callable[[httpx.Client], object]:
    return lambda client: client.post(path, json=body).raise_for_status()


def _chain(*calls: Callable[[httpx.Client], object]) -> Callable[[httpx.Client], object]:
    """``calls`` one after another."""
    return lambda client: [call(client) for call in calls]


def _together(*calls: Callable[[httpx.Client], object]) -> Callable[[httpx.Client], object]:
    """``calls`` at once, each on a thread of its own."""

    def run(client: httpx.Client) -> object:
        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(lambda call: call(client), calls))

    return run


def _views() -> list[View]:
    start, end = (iso(t) for t in local_day_bounds(DAY, venue(EXCHANGE).zone))
    day: dict[str, str | int] = {"symbol": SYMBOL, "exchange": EXCHANGE}
    bars: dict[str, object] = {
        "symbols": [SYMBOL],
        "exchange": EXCHANGE,
        "interval": "1m",
        "metrics": ["ohlcv", "vwap", "twap"],
        "start_time": start,
        "end_time": end,
    }
    tape: dict[str, str | int] = {
        **day,
        "start_time": start,
        "end_time": end,
        "limit": 50,
        "with_quotes": "true",
    }
    page = (_get("/ui/"),)
    assets = (_get("/ui/console.js"), _get("/ui/console.css"))
    venues, snapshots = _get("/ui/venues.json"), _get("/v1/snapshots", {"table": "trades", "limit": 50})
    symbols, coverage = _get("/v1/symbols"), _get("/v1/coverage", day)
    market = _together(_post("/v1/aggregations", bars), _get("/v1/trades", tape))
    # A shared link asks for its market view once the venues' clocks are in, beside the lists.
    shared = (page, assets, (_chain(venues, market), snapshots, symbols, coverage))
    first = (page, assets, (venues, snapshots, symbols), (coverage,), (market,))
    return [
        View("shared link", f"symbol={SYMBOL}&exchange={EXCHANGE}&day={DAY}&interval=1m", shared),
        View("first visit", "", first),
    ]


def _floor(url: str, view: View) -> float:
    """The view's requests, stage after stage, on new connections; milliseconds."""

    def run() -> None:
        with (
            httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client,
            ThreadPoolExecutor(4) as pool,
        ):
            for stage in view.stages:
                list(pool.map(lambda call: call(client), stage))

    return timed_ms(run)[1]


def _paint(browser: Browser, url: str, view: View) -> float:
    """One load of the view in a fresh context: the first useful paint's time since navigation, ms."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.add_init_script(f"sessionStorage.setItem('k2.api-key', {KEY!r});")
        page = context.new_page()
        page.goto(f"{url}/ui/?{view.query}")
        page.wait_for_selector("body[data-painted]", timeout=60_000)
        mark: float = page.evaluate("performance.getEntriesByName('k2-first-useful-paint')[0].startTime")
        return mark
    finally:
        context.close()


def run(sizes: Sizes) -> Section:
    """Serve the ASX sample and time the console's first useful paint beside its floor."""
    lake = ensure_asx_lake()
    runs = RUNS[sizes.name]
    measures: list[Measure] = []
    rows: list[tuple[str, ...]] = []
    with serve(lake, NAME) as server, sync_playwright() as playwright:
        url = f"http://127.0.0.1:{server.port}"
        browser = playwright.chromium.launch(**launch_options())
        try:
            for view in _views():
                cold = _paint(browser, url, view)
                for _ in range(WARMUP):
                    _paint(browser, url, view)
                    _floor(url, view)
                paints, floors = [], []
                for _ in range(runs):  # alternately, so both see the same machine
                    paints.append(_paint(browser, url, view))
                    floors.append(_floor(url, view))
                paint, floor = percentile(paints, 0.5), percentile(floors, 0.5)
                log(f"{TITLE}, {view.name}: p50 {paint:.0f} ms, floor {floor:.0f} ms")
                measures.append(
                    Measure(
                        f"{view.name}: first useful paint, p50 of {runs}",
                        Unit.MILLISECONDS,
                        paint,
                        floor,
                        Target(TARGET_MS, Unit.MILLISECONDS),
                    )
                )
                rows.append(
                    (
                        view.name,
                        Unit.MILLISECONDS.show(cold),
                        Unit.MILLISECONDS.show(percentile(paints, 0.5)),
                        Unit.MILLISECONDS.show(percentile(paints, 0.9)),
                        Unit.MILLISECONDS.show(max(paints)),
                        Unit.MILLISECONDS.show(percentile(floors, 0.5)),
                    )
                )
        finally:
            browser.close()
    return Section(
        title=f"{TITLE} (BHP on {DAY}, ASX sample)",
        description=(
            "`k2 serve` (1 worker, default settings) over the ASX sample's lake; Debian's headless Chromium "
            "opens `/ui/` in a fresh context each run (empty cache and session storage, the key set before "
            "the page's script runs) and reads the page's `k2-first-useful-paint` mark: the chart holds the "
            "day's 1-minute candles and the tape its first 50 trades. A shared link names symbol, day and "
            "interval in its URL; a first visit names nothing (the first symbol's last day). The first "
            f"load after the server starts is timed apart (cold), then {WARMUP} untimed loads, then "
            f"{runs} timed ones alternating with the floor."
        ),
        limit_name="the same requests from a Python client (new connections, same order and parallelism)",
        measures=measures,
        tables=[
            Table(
                "Each way in",
                ("View", "Cold (first load)", "p50", "p90", "Max", "Floor p50"),
                rows,
            )
        ],
    )
