"""Benchmark 8: a soak of the whole pipeline on the platform, as an operator runs it.

For a fixed time, at fixed rates, together: a live feed replaying a Binance-format recording
(``k2 stream playback``, one message per millisecond), a producer sending synthetic ASX-style
trades (``MarketProducer``, in this process), the sink (``k2 stream run``), and the API
(``k2 serve``) answering a steady stream of requests, ``include_live`` ones among them. Every
few seconds it reads each process's resident memory and the sink's consumer lag (from the sink's
own metrics endpoint, the one the platform's Prometheus scrapes), and the latency of the
requests answered since. At the end it stops producing, waits for the sink to commit everything,
and counts the rows in the lake against what Kafka acknowledged: rows lost and duplicated must
both be 0.

There is no peer to compare with here: the figures are K2's own, against the brief's bounds.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pyarrow.compute as pc
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from benchmarks.common import DATA_DIR, MIB, BenchmarkError, Sizes, log, percentile
from benchmarks.on_platform import PlatformRun, clean_up, isolated, platform_run
from benchmarks.results import Measure, Section, Table, Target, Unit
from k2.ingest.live.binance.tapes import SyntheticTape
from k2.ingest.producer import MarketProducer
from k2.ingest.sources.synthetic import SyntheticMarket, SyntheticSource
from k2.lake.catalog import close_catalog, open_catalog
from k2.lake.scan import equal_to
from k2.lake.tables import QUOTES, TRADES, load_table
from k2.obs.discovery import targets_dir
from k2.settings import ApiSettings, K2Settings
from k2.testing.processes import K2Process, Processes, processes

TITLE = "Soak: feed, producer, sink and API together"
#: How long the pipeline runs at its fixed rates.
SECONDS = {"full": 300.0, "quick": 30.0}
#: The live feed's rate (messages/s, replayed at 1x) and the producer's.
FEED_RATE = 1_000
PRODUCER_RATE = 2_000
PRODUCER_BATCH = 200
#: Requests per second the API client sends.
REQUEST_RATE = 20
SAMPLE_S = 5.0
NAN = float("nan")
#: Memory growth is measured from this far into the run (after start-up and first caches).
WARM_S = 0.2
KEY = "soak-key"
#: What was produced (by key) and the venue its rows carry in the lake.
VENUES = (("binance", "BINANCE"), ("soak", "SYN"))
#: How long the sink may take to commit the last rows after producing stops.
DRAIN_TIMEOUT_S = 300.0
LOST_TARGET = Target(0, Unit.COUNT)
LAG_TARGET = Target(1_000, Unit.COUNT)  # the brief's consumer-lag SLO
P99_TARGET = Target(100, Unit.MILLISECONDS)  # the API's p99 under load (bound of the brief's Q6)


@dataclass
class _Sample:
    at_s: float
    lag: float
    feed_buffered: float
    feed_backpressure_s: float
    rss: dict[str, int]
    latencies_ms: list[float]


@dataclass
class _Client:
    """A fixed-rate API client: the latency of every answer, and the statuses."""

    url: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        paths = itertools.cycle(
            [
                ("/v1/trades", {"exchange": "SYN", "limit": "1000"}),
                ("/v1/trades", {"symbol": "BTCUSDT", "exchange": "BINANCE", "include_live": "true"}),
                ("/v1/trades/recent", {"symbol": "ETHUSDT"}),
                ("/v1/quotes", {"symbol": "BTCUSDT", "exchange": "BINANCE", "limit": "1000"}),
                ("/v1/symbols", {}),
                ("/v1/stats", {}),
            ]
        )
        with httpx.Client(base_url=self.url, headers={"X-API-Key": KEY}, timeout=30) as client:
            next_at = time.monotonic()
            while not self.stop.is_set():
                path, params = next(paths)
                began = time.perf_counter()
                status = client.get(path, params=params).status_code
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                next_at += 1 / REQUEST_RATE
                self.stop.wait(max(0.0, next_at - time.monotonic()))


def _recording(path: Path, frames: int) -> Path:
    """``frames`` Binance frames at :data:`FEED_RATE`, trade ids never used before. Only trades
    carry a time (a book ticker follows each trade), so the clock steps two frames' worth.
    """
    start_ms = int(datetime.now(UTC).timestamp() * 1000)
    clock = itertools.count(start_ms, 2 * 1000 // FEED_RATE)
    tape = SyntheticTape(
        ("BTCUSDT", "ETHUSDT", "BNBUSDT"), clock_ms=lambda: next(clock), first_trade_id=start_ms
    )
    with path.open("wb") as out:
        for _ in range(frames):
            event = tape.step()
            out.write(orjson.dumps({"stream": event.stream, "data": event.data}) + b"\n")
    return path


def _produce(settings: K2Settings, seconds: float, stop: threading.Event) -> int:
    """Send synthetic trades (venue SYN) at :data:`PRODUCER_RATE`; the messages Kafka acknowledged."""
    per_day = int(PRODUCER_RATE * seconds) + PRODUCER_BATCH
    market = SyntheticMarket(symbols=4, days=1, trades_per_day=per_day // 4)
    source = SyntheticSource(market, batch_rows=PRODUCER_BATCH, ingested_at=datetime.now(UTC))
    with MarketProducer(settings.kafka) as producer:
        next_at = time.monotonic()
        for batch in source.batches():
            if stop.is_set():
                break
            if batch.table is not TRADES:
                continue
            producer.produce_batch(batch)
            next_at += PRODUCER_BATCH / PRODUCER_RATE
            stop.wait(max(0.0, next_at - time.monotonic()))
        return producer.flush().messages


def _scrape(settings: K2Settings, process: K2Process, job: str) -> dict[str, float]:
    """Each metric family of ``process``'s endpoint (the one it registered for Prometheus as
    ``job``), summed over its samples; empty when it cannot be read.
    """
    found = sorted(targets_dir(settings).glob(f"{job}-{process.pid}-*.json"))
    if not found:
        return {}
    target = json.loads(found[0].read_text())[0]["targets"][0]
    try:
        text = httpx.get(f"http://{target}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        family.name: sum(s.value for s in family.samples if not s.name.endswith("_created"))
        for family in text_string_to_metric_families(text)
    }


def _lake_rows(settings: K2Settings) -> dict[str, tuple[int, int]]:
    """Rows and distinct message ids per venue in the lake (trades and quotes together)."""
    catalog = open_catalog(settings)
    try:
        counts: dict[str, tuple[int, int]] = {}
        for exchange in ("BINANCE", "SYN"):
            ids = []
            for spec in (TRADES, QUOTES):
                table = load_table(catalog, settings.lake.namespace, spec)
                scan = table.scan(row_filter=equal_to("exchange", exchange), selected_fields=("message_id",))
                ids.append(scan.to_arrow()["message_id"])
            rows = sum(len(i) for i in ids)
            distinct = sum(pc.count_distinct(i).as_py() for i in ids)
            counts[exchange] = (rows, distinct)
        return counts
    finally:
        close_catalog(catalog)


def _settings(run: PlatformRun) -> K2Settings:
    base = run.base
    return isolated(base, run.run_id, "soak").model_copy(
        update={
            "data_dir": DATA_DIR / f"soak-{run.run_id}",
            "platform": base.platform.model_copy(update={"data": base.platform_data}),
            "api": ApiSettings(keys=SecretStr(f"soak:{KEY}"), rate_limit="100000/minute"),
        }
    )


@dataclass
class _Outcome:
    """What one soak measured: the samples, the client's answers, rows produced and in the lake."""

    seconds: float
    samples: list[_Sample]
    client: _Client
    produced: dict[str, float]
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)


def _run(settings: K2Settings, seconds: float, logs: Path) -> _Outcome:
    """Run the pipeline for ``seconds``."""
    recording = _recording(logs / "recording.jsonl", int(FEED_RATE * seconds))
    with processes(settings, logs) as run:
        sink = run.start("sink", "stream", "run")
        feed = run.start("feed", "stream", "playback", str(recording), "--speed", "1x", "--format", "json")
        api, url = run.serve()
        stop = threading.Event()
        client = _Client(url)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="soak") as pool:
            producing = pool.submit(_produce, settings, seconds, stop)
            asking = pool.submit(client.run)
            try:
                samples = _sample(settings, run, client, seconds)
                stop.set()
                produced = {"soak": float(producing.result())}
                if feed.wait(DRAIN_TIMEOUT_S) != 0:
                    raise BenchmarkError(f"the feed failed:\n{feed.output()[-2000:]}")
            finally:  # the threads end on these, however the run ends
                stop.set()
                client.stop.set()
            asking.result()
        produced["binance"] = float(sum(1 for _ in recording.open("rb")))
        _drain(settings, sink, produced)
        for process in (sink, api):
            if not process.running():
                raise BenchmarkError(f"{process.name} exited early:\n{process.output()[-2000:]}")
    return _Outcome(seconds, samples, client, produced)


def _sample(settings: K2Settings, run: Processes, client: _Client, seconds: float) -> list[_Sample]:
    """Every :data:`SAMPLE_S` for ``seconds``: the sink's lag, the feed's buffer, every process's
    memory and the latency of the requests answered since the last sample.
    """
    sink, feed = (next(p for p in run.started if p.name == name) for name in ("sink", "feed"))
    samples: list[_Sample] = []
    began = time.monotonic()
    seen = 0
    while (elapsed := time.monotonic() - began) < seconds:
        time.sleep(SAMPLE_S)
        latencies = client.latencies_ms[seen:]
        seen += len(latencies)
        sink_figures = _scrape(settings, sink, "k2-sink")
        feed_figures = _scrape(settings, feed, "k2-feed")
        rss = {p.name: p.rss_bytes() for p in run.started}
        sample = _Sample(
            elapsed,
            sink_figures.get("k2_kafka_consumer_lag_messages", NAN),
            feed_figures.get("k2_feed_buffered_messages", NAN),
            feed_figures.get("k2_feed_backpressure_seconds", NAN),
            rss,
            latencies,
        )
        samples.append(sample)
        memory = ", ".join(f"{n} {v / MIB:,.0f} MiB" for n, v in rss.items())
        log(f"  soak {elapsed:5.0f} s: lag {sample.lag:,.0f}, buffer {sample.feed_buffered:,.0f}, {memory}")
    return samples


def _drain(settings: K2Settings, sink: K2Process, produced: dict[str, float]) -> None:
    """Wait until the lake holds as many distinct rows as were produced (or the timeout)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    wanted = {venue: produced[key] for key, venue in VENUES}
    while time.monotonic() < deadline:
        counts = _lake_rows(settings)
        if all(counts[venue][1] >= rows for venue, rows in wanted.items()):
            return
        if not sink.running():
            raise BenchmarkError(f"the sink exited:\n{sink.output()[-2000:]}")
        time.sleep(5)


def run(sizes: Sizes) -> Section:
    """The soak at ``sizes``' length."""
    seconds = SECONDS[sizes.name]
    section = Section(
        TITLE,
        __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
        "bound",
    )
    with platform_run("soak") as platform:
        settings = _settings(platform)
        logs = settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            outcome = _run(settings, seconds, logs)
            outcome.counts = _lake_rows(settings)
        finally:
            failed = clean_up(platform, [settings])
            shutil.rmtree(settings.data_dir, ignore_errors=True)
            if failed:
                log(f"soak clean-up left: {failed}")
    _report(section, outcome)
    return section


def _report(section: Section, outcome: _Outcome) -> None:
    samples, client, produced, counts = outcome.samples, outcome.client, outcome.produced, outcome.counts
    lost = sum(max(0.0, produced[key] - counts[venue][1]) for key, venue in VENUES)
    duplicated = sum(rows - distinct for rows, distinct in counts.values())
    lags = [s.lag for s in samples if not math.isnan(s.lag)]
    warm = [s for s in samples if s.at_s >= WARM_S * outcome.seconds]
    p99 = percentile(client.latencies_ms, 0.99)
    buffered = [s.feed_buffered for s in samples if s.feed_buffered == s.feed_buffered]
    backpressure = max(
        (s.feed_backpressure_s for s in samples if s.feed_backpressure_s == s.feed_backpressure_s),
        default=0.0,
    )
    section.measures += [
        Measure("Rows lost (acknowledged by Kafka, not in the lake)", Unit.COUNT, lost, None, LOST_TARGET),
        Measure("Rows duplicated in the lake", Unit.COUNT, float(duplicated), None, LOST_TARGET),
        Measure(
            "Consumer lag, highest sample", Unit.COUNT, max(lags, default=float("nan")), None, LAG_TARGET
        ),
        Measure("API p99 over the soak", Unit.MILLISECONDS, p99, None, P99_TARGET),
        Measure("Feed buffer, highest sample (messages)", Unit.COUNT, max(buffered, default=0.0), None),
        Measure("Feed backpressure (socket not read, buffer full)", Unit.SECONDS, backpressure, None),
    ]
    for name in ("sink", "api", "feed"):
        start = warm[0].rss.get(name, 0) if warm else 0
        end = max((s.rss.get(name, 0) for s in warm[-3:]), default=0)
        section.measures.append(
            Measure(f"Memory growth of {name} after warm-up (RSS)", Unit.BYTES, float(end - start), None)
        )
    section.tables.append(
        Table(
            f"Every {SAMPLE_S * 6:.0f} s: consumer lag, API latency of the window, resident memory",
            (
                "t",
                "lag (messages)",
                "feed buffer",
                "API p50",
                "API p99",
                "requests",
                "sink RSS",
                "API RSS",
                "feed RSS",
            ),
            [
                (
                    f"{s.at_s:.0f} s",
                    f"{s.lag:,.0f}",
                    f"{s.feed_buffered:,.0f}",
                    f"{percentile(s.latencies_ms, 0.5):.1f} ms" if s.latencies_ms else "-",
                    f"{percentile(s.latencies_ms, 0.99):.1f} ms" if s.latencies_ms else "-",
                    str(len(s.latencies_ms)),
                    *(f"{s.rss.get(n, 0) / MIB:,.0f} MiB" for n in ("sink", "api", "feed")),
                )
                for s in samples[5::6] or samples
            ],
        )
    )
    section.notes += [
        f"{outcome.seconds:.0f} s at {FEED_RATE:,} feed messages/s and {PRODUCER_RATE:,} produced trades/s; "
        f"{REQUEST_RATE} API requests/s (statuses {dict(sorted(client.statuses.items()))}).",
        f"Produced and acknowledged: {produced['binance']:,.0f} feed rows, {produced['soak']:,.0f} producer "
        f"rows; in the lake: {counts['BINANCE'][1]:,} and {counts['SYN'][1]:,} distinct.",
    ]
