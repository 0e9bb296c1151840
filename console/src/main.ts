// The console's page: pickers, chart, bar table and trade tape, driven by the K2 JSON API. The
// URL carries the view (symbol, venue, day, interval, snapshot, overlays) so it can be shared.

import * as api from "./api";
import { MarketChart, type Overlays, type Span } from "./chart";
import { renderCoverage, renderLoads } from "./coverage";
import { type QuoteAtBar, quotesAtBars } from "./quotes";
import { LiveFollow } from "./live";
import { renderPipeline } from "./pipeline";
import { Replay } from "./replay";
import { AsOfPicker, renderHistory } from "./timetravel";
import { clock, dayBounds, intervalSeconds, minute, second } from "./time";

const TAPE_PAGE = 50;
/** Bar intervals a zoomed chart steps through, finest first. */
const ZOOM_LADDER = ["1s", "5s", "15s", "30s", "1m", "5m", "15m", "30m", "1h"];
/** A zoom fetches the finest bars that put at most this many candles in view. */
const MOST_CANDLES = 240;
const INTERVAL_NAMES: Record<string, string> = {
  "1s": "1-second",
  "5s": "5-second",
  "15s": "15-second",
  "30s": "30-second",
  "1m": "1-minute",
  "5m": "5-minute",
  "15m": "15-minute",
  "30m": "30-minute",
  "1h": "1-hour",
  "1d": "daily",
};

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
let chart: MarketChart | null = null;
let shown: { bars: api.Bar[]; quoted: (QuoteAtBar | null)[]; zone: string; interval: string } | null = null;
/** The day's quotes, once read (mid and spread of any bars of the day, zoomed or not). */
let dayQuotes: api.Quote[] | null = null;
/** The trades snapshot the market view read (what a tag or a time resolved to); replays use it. */
let pinned: api.SnapshotId | null = null;
/** The part of the day the chart shows in bars finer than the chosen interval; null: the whole day. */
let detail: { interval: string; span: Span } | null = null;
let zoomTimer: number | undefined;
let zoomGeneration = 0;
let zoomsStarted = 0;
let tapeCursor: { read: api.DayRead; cursor: string } | null = null;
/** Bumped by every new load, so an answer to a superseded one is dropped. */
let generation = 0;
let coverageGeneration = 0;
let replaying: Replay | null = null;
/** The market view the URL names, asked for as soon as the venues' clocks are in (a shared link
 * paints without waiting for the pickers' lists); ``loadMarket`` takes it if it reads the same. */
let prefetched: { key: string; answer: Promise<[api.Bar[], api.Page<api.Trade>]> } | null = null;
/** The days of the symbol the URL names, asked for with the symbols (see ``prefetched``). */
let prefetchedDays: { key: string; answer: Promise<api.CoverageDay[]> } | null = null;
let following: LiveFollow | null = null;

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

function fill(select: HTMLSelectElement, options: [string, string][], preferred: (string | null)[]): void {
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  const values = new Set(options.map(([value]) => value));
  const pick = preferred.find((value) => value !== null && values.has(value));
  if (pick !== undefined && pick !== null) {
    select.value = pick;
  }
}

function chosenSymbol(): api.SymbolRow | null {
  const [exchange, symbol] = ui.symbol.value.split(":");
  return exchange && symbol ? { exchange, symbol } : null;
}

/** The version of the trades table the "As of" picker names. */
function asOf(): api.AsOf {
  return versions.asOf();
}

function overlays(): Overlays {
  return { vwap: ui.vwap.checked, twap: ui.twap.checked, quotes: ui.quotes.checked };
}

function zoneOf(exchange: string): string {
  return venues[exchange]?.timezone ?? "UTC";
}

function keepInUrl(): void {
  const row = chosenSymbol();
  const state = new URLSearchParams();
  if (row) {
    state.set("symbol", row.symbol);
    state.set("exchange", row.exchange);
  }
  for (const [name, value] of [
    ["day", ui.day.value],
    ["interval", ui.interval.value],
  ] as const) {
    if (value) {
      state.set(name, value);
    }
  }
  const version = asOf();
  if (version && "snapshot" in version) state.set("snapshot", version.snapshot);
  else if (version && "tag" in version) state.set("tag", version.tag);
  else if (version) state.set("at", version.time);
  if (!ui.vwap.checked) state.set("vwap", "off");
  if (!ui.twap.checked) state.set("twap", "off");
  if (!ui.quotes.checked) state.set("quotes", "off");
  history.replaceState(null, "", `?${state.toString()}`);
}

function cell(row: HTMLTableRowElement, text: string, iso?: string): void {
  const td = row.insertCell();
  if (iso === undefined) {
    td.textContent = text;
  } else {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = text;
    td.append(time);
  }
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
  chart.show(bars, quoted, zone, overlays(), (intervalSeconds(interval) ?? 86400) < 60, visible);
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

function tradeRow(trade: api.Trade, zone: string): HTMLTableRowElement {
  const row = document.createElement("tr");
  cell(row, clock(trade.timestamp, zone), trade.timestamp);
  cell(row, trade.price);
  cell(row, trade.quantity);
  cell(row, (trade.trade_conditions ?? []).join(" "));
  cell(row, trade.bid_price ?? "");
  cell(row, trade.ask_price ?? "");
  return row;
}

function appendTrades(trades: api.Trade[], zone: string): void {
  ui.tape.append(...trades.map((trade) => tradeRow(trade, zone)));
}

function tapePage(page: api.Page<api.Trade>, read: api.DayRead): void {
  appendTrades(page.rows, zoneOf(read.exchange));
  tapeCursor = page.nextCursor ? { read, cursor: page.nextCursor } : null;
  ui.more.hidden = tapeCursor === null;
  const count = ui.tape.rows.length;
  ui.tapeStatus.textContent = tapeCursor
    ? `The first ${count} trades of the day.`
    : `All ${count} trades of the day.`;
}

function currentRead(): api.DayRead | null {
  const row = chosenSymbol();
  if (!row || !ui.day.value) {
    return null;
  }
  return { ...row, ...dayBounds(ui.day.value, zoneOf(row.exchange)), asOf: asOf() };
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
  let candles = shown.bars.length;
  let lastStart = last ? Date.parse(last.interval_start) / 1000 : null;
  ui.tape.replaceChildren();
  ui.more.hidden = true;
  ui.tapeStatus.textContent = "The latest trades, newest first, as they arrive.";
  const from = last?.interval_start ?? read.start;
  let arrived = 0;
  let newestAt = from;
  const started = new LiveFollow(read, from, ui.interval.value, zone, {
    trades: (trades) => {
      arrived += trades.length;
      newestAt = trades.at(-1)?.timestamp ?? newestAt;
      ui.tape.prepend(...trades.map((trade) => tradeRow(trade, zone)).reverse());
      while (ui.tape.rows.length > TAPE_PAGE) {
        ui.tape.rows[ui.tape.rows.length - 1]?.remove();
      }
    },
    bar: (bar) => {
      chart?.updateBar(bar);
      if (lastStart === null || bar.start > lastStart) {
        lastStart = bar.start;
        candles += 1;
        ui.chart.dataset.candles = String(candles);
      }
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
  let candles = 0;
  let lastStart: number | null = null;
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
        ui.tape.replaceChildren();
        ui.more.hidden = true;
        ui.tapeStatus.textContent = "The latest trades of the replay, newest first.";
        ui.chart.dataset.candles = "0";
      },
      trade: (trade) => {
        ui.tape.prepend(tradeRow(trade, zone));
        ui.tape.rows[TAPE_PAGE]?.remove();
      },
      bar: (bar) => {
        chart?.updateBar(bar);
        if (bar.start !== lastStart) {
          lastStart = bar.start;
          candles += 1;
          ui.chart.dataset.candles = String(candles);
        }
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
  keepInUrl();
  const key = marketKey(read, ui.interval.value);
  const answer =
    prefetched?.key === key
      ? prefetched.answer
      : Promise.all([api.bars(read, ui.interval.value), api.trades(read, TAPE_PAGE, null)]);
  prefetched = null;
  const [bars, page] = await answer;
  if (mine !== generation) {
    return;
  }
  say(null);
  pinned = page.snapshotId;
  dayQuotes = null;
  detail = null;
  ui.wholeDay.hidden = true;
  display(bars, ui.interval.value, null);
  ui.tape.replaceChildren();
  tapePage(page, read);
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
        display(shown.bars, shown.interval, detail?.span ?? null);
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
  const row = chosenSymbol();
  if (!row) {
    return;
  }
  const zone = zoneOf(row.exchange);
  const name = INTERVAL_NAMES[interval] ?? interval;
  let title = `${row.symbol} on ${row.exchange}, ${ui.day.value}: ${bars.length} ${name} bars`;
  if (detail) {
    const { from, to } = detail.span;
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

/** Show the bars for ``span`` in the finest interval that keeps at most ``MOST_CANDLES`` in view,
 * never coarser than the chosen interval; zoomed back out to that interval, show the whole day. */
async function zoomTo(span: Span): Promise<void> {
  const read = currentRead();
  if (!read || !shown || replaying || following) {
    return;
  }
  const chosen = intervalSeconds(ui.interval.value) ?? 86400;
  const width = Math.max(span.to - span.from, 1);
  const want = ZOOM_LADDER.find((interval) => width / (intervalSeconds(interval) ?? 86400) <= MOST_CANDLES);
  const wantSeconds = want ? (intervalSeconds(want) ?? 86400) : chosen;
  const mine = ++zoomGeneration;
  if (!want || wantSeconds >= chosen) {
    if (detail) {
      await wholeDay(span);
    }
    return;
  }
  const inside = detail !== null && span.from >= detail.span.from && span.to <= detail.span.to;
  if (inside && wantSeconds >= (intervalSeconds(shown.interval) ?? 86400)) {
    return; // the bars shown are fine enough
  }
  const dayFrom = Date.parse(read.start) / 1000;
  const dayTo = Date.parse(read.end) / 1000;
  const from = Math.max(dayFrom, Math.floor((span.from - width / 2) / wantSeconds) * wantSeconds);
  const to = Math.min(dayTo, Math.ceil((span.to + width / 2) / wantSeconds) * wantSeconds);
  const loaded = generation;
  const bars = await api.bars(
    { ...read, start: new Date(from * 1000).toISOString(), end: new Date(to * 1000).toISOString() },
    want,
  );
  if (loaded !== generation || mine !== zoomGeneration || replaying) {
    return;
  }
  detail = { interval: want, span: { from, to } };
  ui.wholeDay.hidden = false;
  display(bars, want, span);
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
  const row = chosenSymbol();
  if (!row) {
    return;
  }
  const mine = ++generation;
  const coverage = prefetchedDays?.key === dayKey(row) ? prefetchedDays.answer : api.coverage(row, asOf());
  prefetchedDays = null;
  const days = (await coverage).filter((day) => day.rows > 0);
  if (mine !== generation) {
    return;
  }
  const previous = day ?? (ui.day.value || wanted.get("day"));
  fill(
    ui.day,
    days.map((day) => [day.day, `${day.day} (${day.rows} trades)`]),
    [previous, days.at(-1)?.day ?? null],
  );
  if (days.length === 0) {
    showEmpty(`${row.symbol} has no trades in this snapshot.`);
    return;
  }
  showEmpty(null);
  await loadMarket();
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
    const ready = await api.readiness();
    const parts = ready.dependencies.map(
      (d) => `${d.name} ${d.status === "ok" ? `${d.latency_ms.toFixed(1)} ms` : `failing: ${d.message ?? ""}`}`,
    );
    const open = Object.entries(ready.breakers).filter(([, state]) => state !== "closed");
    parts.push(open.length ? `breakers ${open.map(([name, state]) => `${name} ${state}`).join(", ")}` : "breakers closed");
    ui.health.textContent = `${ready.status === "ok" ? "Ready" : "Not ready"}: ${parts.join(" · ")}`;
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
    const row = { symbol, exchange };
    const answer = api.coverage(row, versions.asOfIn(wanted));
    answer.catch(() => undefined); // loadDays awaits it and reports a failure
    prefetchedDays = { key: JSON.stringify([symbol, exchange, versions.asOfIn(wanted)]), answer };
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

function dayKey(row: api.SymbolRow): string {
  return JSON.stringify([row.symbol, row.exchange, asOf()]);
}

function marketKey(read: api.DayRead, interval: string): string {
  return JSON.stringify([read.symbol, read.exchange, read.start, read.end, read.asOf, interval]);
}

/** Ask for the market view a shared link names (symbol, venue, day; interval and version too). */
function prefetchMarket(): void {
  const [symbol, exchange, day] = [wanted.get("symbol"), wanted.get("exchange"), wanted.get("day")];
  if (!symbol || !exchange || !day || !/^\d{4}-\d{2}-\d{2}$/.test(day)) {
    return;
  }
  const read: api.DayRead = { symbol, exchange, ...dayBounds(day, zoneOf(exchange)), asOf: versions.asOfIn(wanted) };
  const answer = Promise.all([api.bars(read, ui.interval.value), api.trades(read, TAPE_PAGE, null)]);
  answer.catch(() => undefined); // loadMarket awaits it and reports a failure
  prefetched = { key: marketKey(read, ui.interval.value), answer };
}

function run(step: () => Promise<void>): void {
  step().catch(fail);
}

function fromUrl(): void {
  const interval = wanted.get("interval");
  if (interval && [...ui.interval.options].some((option) => option.value === interval)) {
    ui.interval.value = interval;
  }
  ui.vwap.checked = wanted.get("vwap") !== "off";
  ui.quotes.checked = wanted.get("quotes") !== "off";
  ui.twap.checked = wanted.get("twap") !== "off";
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
ui.day.addEventListener("change", () => run(loadMarket));
ui.interval.addEventListener("change", () => run(loadMarket));
for (const box of [ui.vwap, ui.twap, ui.quotes]) {
  box.addEventListener("change", () => {
    if (shown && chart && !replaying) {
      chart.show(shown.bars, shown.quoted, shown.zone, overlays());
    }
    keepInUrl();
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
ui.more.addEventListener("click", () => {
  const next = tapeCursor;
  if (next) {
    run(async () => tapePage(await api.trades(next.read, TAPE_PAGE, next.cursor), next.read));
  }
});

fromUrl();
if (api.apiKey.get()) {
  run(start);
} else {
  void showHealth(); // needs no key; the pipeline's health does, and follows the first paint
  askKey(null);
}
