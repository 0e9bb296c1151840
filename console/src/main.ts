// The console's page: pickers, chart, bar table and trade tape, driven by the K2 JSON API. The
// URL carries the view (symbol, venue, day, interval, snapshot, overlays) so it can be shared.

import * as api from "./api";
import { CandleCount } from "./candles";
import { MarketChart, type Span } from "./chart";
import { renderCoverage, renderLoads } from "./coverage";
import { type QuoteAtBar, quotesAtBars } from "./quotes";
import { LiveFollow } from "./live";
import { Ahead } from "./prefetch";
import { fill, Pickers } from "./pickers";
import { readiness, renderPipeline } from "./pipeline";
import { Replay } from "./replay";
import { AsOfPicker, renderHistory } from "./timetravel";
import { cell, Tape } from "./tape";
import { clock, dayBounds, intervalSeconds, minute, second } from "./time";
import { INTERVAL_NAMES, planZoom } from "./zoom";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) {
    throw new Error(`the page has no #${id}`);
  }
  return found as T;
}

const ui = {
  alert: element<HTMLDivElement>("alert"),
  keyForm: element<HTMLFormElement>("key-form"),
  keyInput: element<HTMLInputElement>("key-input"),
  keyReason: element<HTMLParagraphElement>("key-reason"),
  changeKey: element<HTMLButtonElement>("change-key"),
  market: element<HTMLElement>("market"),
  empty: element<HTMLParagraphElement>("empty"),
  views: element<HTMLDivElement>("views"),
  symbol: element<HTMLSelectElement>("symbol"),
  day: element<HTMLSelectElement>("day"),
  through: element<HTMLSelectElement>("through"),
  interval: element<HTMLSelectElement>("interval"),
  snapshot: element<HTMLSelectElement>("snapshot"),
  asOfTime: element<HTMLInputElement>("as-of-time"),
  wholeDay: element<HTMLButtonElement>("whole-day"),
  history: element<HTMLTableSectionElement>("history-rows"),
  vwap: element<HTMLInputElement>("vwap"),
  twap: element<HTMLInputElement>("twap"),
  quotes: element<HTMLInputElement>("quotes"),
  live: element<HTMLInputElement>("live"),
  liveStatus: element<HTMLParagraphElement>("live-status"),
  chartTitle: element<HTMLHeadingElement>("chart-title"),
  chart: element<HTMLDivElement>("chart"),
  bars: element<HTMLTableSectionElement>("bars-rows"),
  barsTable: element<HTMLDetailsElement>("bars-table"),
  tape: element<HTMLTableSectionElement>("tape-rows"),
  tapeStatus: element<HTMLParagraphElement>("tape-status"),
  more: element<HTMLButtonElement>("more"),
  coverage: element<HTMLTableElement>("coverage"),
  loads: element<HTMLTableSectionElement>("loads-rows"),
  loadsEmpty: element<HTMLParagraphElement>("loads-empty"),
  speed: element<HTMLSelectElement>("speed"),
  play: element<HTMLButtonElement>("play"),
  replayProgress: element<HTMLProgressElement>("replay-progress"),
  replayStatus: element<HTMLParagraphElement>("replay-status"),
  health: element<HTMLParagraphElement>("health"),
  pipeline: element<HTMLDivElement>("pipeline-body"),
};

let venues: Record<string, api.Venue> = {};
const versions = new AsOfPicker(ui.snapshot, ui.asOfTime);
const pickers = new Pickers(ui);
let chart: MarketChart | null = null;
let shown: { bars: api.Bar[]; quoted: (QuoteAtBar | null)[]; zone: string; interval: string } | null = null;
/** The day's quotes, once read (mid and spread of any bars of the day, zoomed or not). */
let dayQuotes: api.Quote[] | null = null;
/** The trades snapshot the market view read (what a tag or a time resolved to); replays use it. */
let pinned: api.SnapshotId | null = null;
/** The part of the day the chart shows in bars finer than the chosen interval; null: the whole day. */
let detail: Span | null = null;
let zoomTimer: number | undefined;
let zoomGeneration = 0;
let zoomsStarted = 0;
const tape = new Tape(ui.tape, ui.tapeStatus, ui.more);
/** Bumped by every new load, so an answer to a superseded one is dropped. */
let generation = 0;
let coverageGeneration = 0;
let replaying: Replay | null = null;
/** The market view and days a shared link names, asked for before the pickers are filled. */
const ahead = new Ahead();
let following: LiveFollow | null = null;
/** The chosen symbol's days with trades, for "Through". */
let listedDays: string[] = [];

const wanted = new URLSearchParams(location.search);

/** No rows, when the table was never loaded (the API's NO_DATA); any other failure stands. */
function noData<T>(error: unknown): T[] {
  if (error instanceof api.ApiError && error.code === "NO_DATA") {
    return [];
  }
  throw error;
}

function say(message: string | null): void {
  ui.alert.textContent = message ?? "";
  ui.alert.hidden = message === null;
}

function fail(error: unknown): void {
  if (error instanceof api.ApiError && error.refusedKey) {
    askKey(`The API refused the key: ${error.message}`);
  } else if (error instanceof api.ApiError) {
    const reference = error.correlationId ? ` (${error.code}, correlation id ${error.correlationId})` : "";
    say(`${error.message}${reference}`);
  } else {
    say(`The console failed: ${String(error)}`);
  }
}

function askKey(reason: string | null): void {
  ui.market.hidden = true;
  ui.keyForm.hidden = false;
  ui.keyReason.textContent = reason ?? "";
  ui.keyReason.hidden = reason === null;
  say(null);
  ui.keyInput.value = "";
  ui.keyInput.focus();
}

function showEmpty(message: string | null): void {
  if (message !== null) {
    besides();
  }
  ui.empty.textContent = message ?? "";
  ui.empty.hidden = message === null;
  ui.views.hidden = message !== null;
}

/** The version of the trades table the "As of" picker names. */
function asOf(): api.AsOf {
  return versions.asOf();
}

function zoneOf(exchange: string): string {
  return venues[exchange]?.timezone ?? "UTC";
}

function showBars(
  bars: api.Bar[],
  quoted: (QuoteAtBar | null)[],
  zone: string,
  interval: string,
  visible: Span | null = null,
): void {
  shown = { bars, quoted, zone, interval };
  if (!chart) {
    chart = new MarketChart(ui.chart);
    chart.onZoom(zoomed);
  }
  chart.show(bars, quoted, zone, pickers.overlays(), (intervalSeconds(interval) ?? 86400) < 60, visible);
  ui.chart.dataset.candles = String(bars.length);
  ui.chart.dataset.interval = interval;
  if (ui.barsTable.open) {
    fillBarsTable();
  }
}

/** The bars shown, as a table: filled when the table is opened (hundreds of rows cost the first
 * paint time while nobody looks at them). */
function fillBarsTable(): void {
  if (!shown) {
    ui.bars.replaceChildren();
    return;
  }
  const { bars, quoted, zone } = shown;
  ui.bars.replaceChildren(
    ...bars.map((bar, index) => {
      const row = document.createElement("tr");
      cell(row, minute(Date.parse(bar.interval_start) / 1000, zone), bar.interval_start);
      const quote = quoted[index];
      const values = [bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.twap, quote?.mid, quote?.spread];
      for (const value of values) {
        cell(row, value ?? "");
      }
      return row;
    }),
  );
}

function currentRead(): api.DayRead | null {
  const row = pickers.symbol();
  if (!row || !ui.day.value) {
    return null;
  }
  const zone = zoneOf(row.exchange);
  const last = ui.through.value || ui.day.value;
  return { ...row, start: dayBounds(ui.day.value, zone).start, end: dayBounds(last, zone).end, asOf: asOf() };
}

function stopLive(): void {
  following?.stop();
  following = null;
  ui.liveStatus.textContent = "";
}

/** Follow the day's live tail from the chart's last candle (the whole day's, latest snapshot). */
function startLive(): void {
  const read = currentRead();
  if (!read || !shown || detail || read.asOf !== null) {
    return;
  }
  stopLive();
  const zone = zoneOf(read.exchange);
  const last = shown.bars.at(-1);
  const candles = new CandleCount(shown.bars.length, last ? Date.parse(last.interval_start) / 1000 : null);
  tape.latest("The latest trades, newest first, as they arrive.");
  const from = last?.interval_start ?? read.start;
  let arrived = 0;
  let newestAt = from;
  const started = new LiveFollow(read, from, ui.interval.value, zone, {
    trades: (trades) => {
      arrived += trades.length;
      newestAt = trades.at(-1)?.timestamp ?? newestAt;
      tape.prepend(trades, zone);
    },
    bar: (bar) => {
      chart?.updateBar(bar);
      ui.chart.dataset.candles = String(candles.add(bar));
    },
    status: (page) => {
      const lake = page.lakeCompleteUntil
        ? `the lake holds every trade before ${clock(page.lakeCompleteUntil, zone)}`
        : "no sink has committed any of Kafka's tail to the lake yet";
      const newest = arrived ? `, the newest at ${clock(newestAt, zone)}` : "";
      ui.liveStatus.textContent =
        `Following live from ${clock(from, zone)}: ${arrived} trades arrived${newest}; ` +
        `${page.liveRows} of the last answer's came from Kafka's tail; ${lake}.`;
    },
    failed: (error) => {
      following = null;
      ui.live.checked = false;
      ui.liveStatus.textContent = "";
      fail(error);
    },
  });
  following = started;
  started.start();
}

function stopReplay(): void {
  replaying?.pause();
  replaying = null;
  ui.play.textContent = "Play";
  ui.replayProgress.value = 0;
  ui.replayStatus.textContent = "";
}

function startReplay(read: api.DayRead): Replay {
  const zone = zoneOf(read.exchange);
  const candles = new CandleCount(0, null);
  stopLive();
  ui.live.checked = false;
  detail = null;
  ui.wholeDay.hidden = true;
  return new Replay(
    read,
    pinned,
    ui.interval.value,
    zone,
    {
      reset: () => {
        chart?.startReplay(zone);
        tape.latest("The latest trades of the replay, newest first.");
        ui.chart.dataset.candles = "0";
      },
      trade: (trade) => {
        tape.prepend([trade], zone);
      },
      bar: (bar) => {
        chart?.updateBar(bar);
        ui.chart.dataset.candles = String(candles.add(bar));
      },
      progress: (played, total, clockMs, done) => {
        ui.replayProgress.value = total ? played / total : 1;
        const at = clock(new Date(clockMs).toISOString(), zone);
        ui.replayStatus.textContent = done
          ? `Replay finished: ${played} of ${total} trades.`
          : `${played} of ${total} trades played; venue clock ${at}.`;
        if (done) {
          replaying = null;
          ui.play.textContent = "Play";
        }
      },
      failed: (error) => {
        stopReplay();
        fail(error);
      },
    },
    Number(ui.speed.value),
  );
}

function togglePlay(): void {
  if (replaying?.playing) {
    replaying.pause();
    ui.play.textContent = "Resume";
  } else if (replaying) {
    replaying.resume();
    ui.play.textContent = "Pause";
  } else {
    const read = currentRead();
    if (read) {
      const started = startReplay(read);
      replaying = started;
      ui.play.textContent = "Pause";
      run(() => started.start());
    }
  }
}

async function loadMarket(): Promise<void> {
  const read = currentRead();
  if (!read) {
    return;
  }
  stopReplay();
  stopLive();
  const mine = ++generation;
  pickers.keepInUrl(asOf());
  const [bars, page] = await ahead.market(read, ui.interval.value);
  if (mine !== generation) {
    return;
  }
  say(null);
  pinned = page.snapshotId;
  dayQuotes = null;
  detail = null;
  ui.wholeDay.hidden = true;
  display(bars, ui.interval.value, null);
  tape.first(page, read, zoneOf(read.exchange));
  markPainted();
  if (ui.live.checked) {
    startLive();
  }
  // The chart and the tape show first; mid and spread join them once the day's quotes are in.
  run(async () => {
    const quotes = await api.quotes(read).catch(noData<api.Quote>);
    if (mine === generation) {
      dayQuotes = quotes;
      if (shown && !replaying) {
        display(shown.bars, shown.interval, detail);
      }
    }
  });
}

/** The first time the chart and the tape show a day: the page's first useful paint, as a
 * performance mark (``k2-first-useful-paint``, read by benchmarks/console) and ``data-painted``. */
function markPainted(): void {
  if (!document.body.dataset.painted) {
    document.body.dataset.painted = "true";
    performance.mark("k2-first-useful-paint");
    besides();
  }
}

let besidesStarted = false;

/** What the page shows besides the market (readiness, pipeline health): asked for once the market
 * view painted (or showed why it cannot), so it does not slow that down. */
function besides(): void {
  if (!besidesStarted) {
    besidesStarted = true;
    void showHealth();
    void showPipeline();
  }
}

/** Show ``bars`` of ``interval`` with the day's quotes (once read), and title the chart. */
function display(bars: api.Bar[], interval: string, visible: Span | null): void {
  const row = pickers.symbol();
  if (!row) {
    return;
  }
  const zone = zoneOf(row.exchange);
  const name = INTERVAL_NAMES[interval] ?? interval;
  const days = ui.through.value ? `${ui.day.value} to ${ui.through.value}` : ui.day.value;
  let title = `${row.symbol} on ${row.exchange}, ${days}: ${bars.length} ${name} bars`;
  if (detail) {
    const { from, to } = detail;
    title += ` from ${second(from, zone)} to ${second(to, zone)} (zoomed in; "Whole day" goes back)`;
    ui.chart.dataset.start = new Date(from * 1000).toISOString();
    ui.chart.dataset.end = new Date(to * 1000).toISOString();
  } else {
    delete ui.chart.dataset.start;
    delete ui.chart.dataset.end;
  }
  ui.chartTitle.textContent = title;
  showBars(bars, dayQuotes ? quotesAtBars(bars, dayQuotes) : [], zone, interval, visible);
}

/** The user zoomed or scrolled the chart: after a pause, fetch finer bars for what is in view.
 * The chart is ``aria-busy`` from the first wheel step until the last fetch it asked for is in. */
function zoomed(span: Span): void {
  window.clearTimeout(zoomTimer);
  ui.chart.setAttribute("aria-busy", "true");
  zoomTimer = window.setTimeout(() => {
    zoomTimer = undefined;
    const mine = ++zoomsStarted;
    run(async () => {
      try {
        await zoomTo(span);
      } finally {
        if (zoomTimer === undefined && mine === zoomsStarted) {
          ui.chart.removeAttribute("aria-busy");
        }
      }
    });
  }, 300);
}

/** Show what :func:`planZoom` says for ``span``: finer bars fetched for it, or the whole day. */
async function zoomTo(span: Span): Promise<void> {
  const read = currentRead();
  if (!read || !shown || replaying || following) {
    return;
  }
  const day = { from: Date.parse(read.start) / 1000, to: Date.parse(read.end) / 1000 };
  const plan = planZoom(span, ui.interval.value, { interval: shown.interval, detail }, day);
  const mine = ++zoomGeneration;
  if (plan.kind === "whole day") {
    await wholeDay(span);
    return;
  }
  if (plan.kind === "keep") {
    return;
  }
  const { from, to } = plan.span;
  const loaded = generation;
  const bars = await api.bars(
    { ...read, start: new Date(from * 1000).toISOString(), end: new Date(to * 1000).toISOString() },
    plan.interval,
  );
  if (loaded !== generation || mine !== zoomGeneration || replaying) {
    return;
  }
  detail = plan.span;
  ui.wholeDay.hidden = false;
  display(bars, plan.interval, span);
}

/** Back to the whole day in the chosen interval (keeping ``visible`` in view, if given). */
async function wholeDay(visible: Span | null = null): Promise<void> {
  const read = currentRead();
  if (!read) {
    return;
  }
  const loaded = generation;
  const mine = ++zoomGeneration;
  const bars = await api.bars(read, ui.interval.value);
  if (loaded !== generation || mine !== zoomGeneration || replaying) {
    return;
  }
  detail = null;
  ui.wholeDay.hidden = true;
  display(bars, ui.interval.value, visible);
}

async function loadDays(day: string | null = null): Promise<void> {
  const row = pickers.symbol();
  if (!row) {
    return;
  }
  const mine = ++generation;
  const days = (await ahead.days(row, asOf())).filter((day) => day.rows > 0);
  if (mine !== generation) {
    return;
  }
  const previous = day ?? (ui.day.value || wanted.get("day"));
  fill(
    ui.day,
    days.map((day) => [day.day, `${day.day} (${day.rows} trades)`]),
    [previous, days.at(-1)?.day ?? null],
  );
  listedDays = days.map((d) => d.day);
  fillThrough(day === null ? (ui.through.value || wanted.get("through")) : null);
  if (days.length === 0) {
    showEmpty(`${row.symbol} has no trades in this snapshot.`);
    return;
  }
  showEmpty(null);
  await loadMarket();
}

/** The days "Through" offers: the chosen day alone, or any later day of the symbol's. */
function fillThrough(preferred: string | null): void {
  const later = listedDays.filter((d) => d > ui.day.value);
  fill(ui.through, [["", "that day only"], ...later.map((d): [string, string] => [d, d])], [preferred, ""]);
}

/** Fill the symbol picker (from ``listed``, the symbols already asked for, or a new call) and
 * open the chosen symbol's days. */
async function loadSymbols(listed: Promise<api.SymbolRow[]> | null = null): Promise<void> {
  const mine = ++generation;
  const rows = await (listed ?? api.symbols(asOf()));
  if (mine !== generation) {
    return;
  }
  const fromUrl = wanted.has("symbol") ? `${wanted.get("exchange") ?? ""}:${wanted.get("symbol") ?? ""}` : null;
  fill(
    ui.symbol,
    rows.map((r) => [`${r.exchange}:${r.symbol}`, `${r.symbol} · ${r.exchange}`]),
    [ui.symbol.value || null, fromUrl],
  );
  if (rows.length === 0) {
    showEmpty(
      "The lake holds no trades yet. Load some with `k2 ingest asx <directory>` or `make demo`, then reload this page.",
    );
    return;
  }
  await loadDays();
  run(loadCoverage); // below the market view: read once that view is up
}

async function loadCoverage(): Promise<void> {
  const mine = ++coverageGeneration;
  const [days, gaps, loads] = await Promise.all([api.coverage(null, asOf()), api.gaps(asOf()), api.loads()]);
  if (mine === coverageGeneration) {
    renderLoads(ui.loads, ui.loadsEmpty, loads);
    renderCoverage(ui.coverage, days, gaps, (row, day) => {
      ui.symbol.value = `${row.exchange}:${row.symbol}`;
      ui.chartTitle.scrollIntoView();
      run(() => loadDays(day));
    });
  }
}

const PIPELINE_EVERY_MS = 10_000;
let pipelineTimer: number | undefined;

/** Show the pipeline's health now and every ``PIPELINE_EVERY_MS``; "Follow live" needs a stream. */
async function showPipeline(): Promise<void> {
  window.clearTimeout(pipelineTimer);
  try {
    const found = await api.pipeline();
    renderPipeline(ui.pipeline, found);
    const embedded = found.profile === "embedded";
    ui.live.disabled = embedded;
    ui.live.title = embedded ? "The live tail needs Kafka: run on the platform (k2 platform up)." : "";
  } catch (failure) {
    ui.pipeline.textContent = `The pipeline's health is unknown: ${failure instanceof api.ApiError ? failure.message : String(failure)}`;
  }
  pipelineTimer = window.setTimeout(() => void showPipeline(), PIPELINE_EVERY_MS);
}

async function showHealth(): Promise<void> {
  try {
    ui.health.textContent = readiness(await api.readiness());
  } catch (failure) {
    ui.health.textContent = `Readiness unknown: ${String(failure)}`;
  }
}

async function start(): Promise<void> {
  ui.keyForm.hidden = true;
  ui.market.hidden = false;
  say(null);
  // A lake no trade was ever loaded into has no trades table: no snapshots, and no symbols below.
  // The symbols are asked for at once, as of the version the URL names (the picker is not filled yet).
  const symbols = api.symbols(versions.asOfIn(wanted));
  symbols.catch(() => undefined); // awaited below; a failure is reported there
  const [symbol, exchange] = [wanted.get("symbol"), wanted.get("exchange")];
  if (symbol && exchange) {
    ahead.prefetchDays({ symbol, exchange }, versions.asOfIn(wanted));
  }
  const known = api.venues();
  const listing = api.snapshots().catch(noData<api.Snapshot>);
  listing.catch(() => undefined); // awaited below; a failure is reported there
  venues = await known;
  prefetchMarket();
  const listed = await listing;
  versions.fill(listed, wanted);
  renderHistory(ui.history, listed, (snapshot) => {
    versions.choose(snapshot);
    ui.market.scrollIntoView();
    run(loadSymbols);
  });
  // The URL's version may name nothing listed (the picker then says Latest): ask again if so.
  const asked = JSON.stringify(versions.asOfIn(wanted)) === JSON.stringify(versions.asOf());
  await loadSymbols(asked ? symbols : null);
}

/** Ask for the market view a shared link names (symbol, venue, day; interval and version too). */
function prefetchMarket(): void {
  const [symbol, exchange, day] = [wanted.get("symbol"), wanted.get("exchange"), wanted.get("day")];
  const isDay = (text: string | null): text is string => text !== null && /^\d{4}-\d{2}-\d{2}$/.test(text);
  if (!symbol || !exchange || !isDay(day)) {
    return;
  }
  const through = wanted.get("through");
  const zone = zoneOf(exchange);
  const end = dayBounds(isDay(through) && through > day ? through : day, zone).end;
  const read: api.DayRead = { symbol, exchange, start: dayBounds(day, zone).start, end, asOf: versions.asOfIn(wanted) };
  ahead.prefetchMarket(read, ui.interval.value);
}

function run(step: () => Promise<void>): void {
  step().catch(fail);
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  api.apiKey.set(ui.keyInput.value.trim());
  run(start);
});
ui.changeKey.addEventListener("click", () => {
  api.apiKey.forget();
  askKey(null);
});
ui.snapshot.addEventListener("change", () => {
  versions.changed();
  if (versions.complete) {
    run(loadSymbols);
  }
});
ui.asOfTime.addEventListener("change", () => run(loadSymbols));
ui.wholeDay.addEventListener("click", () => run(() => wholeDay()));
ui.symbol.addEventListener("change", () => run(loadDays));
ui.day.addEventListener("change", () => {
  fillThrough(ui.through.value);
  run(loadMarket);
});
ui.through.addEventListener("change", () => run(loadMarket));
ui.interval.addEventListener("change", () => run(loadMarket));
for (const box of [ui.vwap, ui.twap, ui.quotes]) {
  box.addEventListener("change", () => {
    if (shown && chart && !replaying) {
      chart.show(shown.bars, shown.quoted, shown.zone, pickers.overlays());
    }
    pickers.keepInUrl(asOf());
  });
}
ui.play.addEventListener("click", togglePlay);
ui.barsTable.addEventListener("toggle", () => {
  if (ui.barsTable.open) {
    fillBarsTable();
  }
});
ui.live.addEventListener("change", () => {
  if (!ui.live.checked) {
    stopLive();
    run(loadMarket);
  } else if (asOf() !== null || detail) {
    versions.choose(""); // the live tail goes on from the latest snapshot, over the whole day
    run(loadSymbols);
  } else {
    startLive();
  }
});
ui.speed.addEventListener("change", () => {
  if (replaying) {
    replaying.speed = Number(ui.speed.value);
  }
});
ui.more.addEventListener("click", () => run(() => tape.nextPage()));

pickers.fromUrl(wanted);
if (api.apiKey.get()) {
  run(start);
} else {
  void showHealth(); // needs no key; the pipeline's health does, and follows the first paint
  askKey(null);
}
