// The console's page: pickers, chart, bar table and trade tape, driven by the K2 JSON API. The
// URL carries the view (symbol, venue, day, interval, snapshot, overlays) so it can be shared.

import * as api from "./api";
import { MarketChart, type Overlays } from "./chart";
import { renderCoverage } from "./coverage";
import { type QuoteAtBar, quotesAtBars } from "./quotes";
import { Replay } from "./replay";
import { clock, dayBounds, local, minute } from "./time";

const TAPE_PAGE = 50;

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
  vwap: element<HTMLInputElement>("vwap"),
  twap: element<HTMLInputElement>("twap"),
  quotes: element<HTMLInputElement>("quotes"),
  chartTitle: element<HTMLHeadingElement>("chart-title"),
  chart: element<HTMLDivElement>("chart"),
  bars: element<HTMLTableSectionElement>("bars-rows"),
  tape: element<HTMLTableSectionElement>("tape-rows"),
  tapeStatus: element<HTMLParagraphElement>("tape-status"),
  more: element<HTMLButtonElement>("more"),
  coverage: element<HTMLTableElement>("coverage"),
  speed: element<HTMLSelectElement>("speed"),
  play: element<HTMLButtonElement>("play"),
  replayProgress: element<HTMLProgressElement>("replay-progress"),
  replayStatus: element<HTMLParagraphElement>("replay-status"),
  health: element<HTMLParagraphElement>("health"),
};

let venues: Record<string, api.Venue> = {};
let chart: MarketChart | null = null;
let shown: { bars: api.Bar[]; quoted: (QuoteAtBar | null)[]; zone: string } | null = null;
let tapeCursor: { read: api.DayRead; cursor: string } | null = null;
/** Bumped by every new load, so an answer to a superseded one is dropped. */
let generation = 0;
let coverageGeneration = 0;
let replaying: Replay | null = null;

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

function snapshot(): api.SnapshotId | null {
  return ui.snapshot.value || null;
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
    ["snapshot", ui.snapshot.value],
  ] as const) {
    if (value) {
      state.set(name, value);
    }
  }
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

function showBars(bars: api.Bar[], quoted: (QuoteAtBar | null)[], zone: string): void {
  shown = { bars, quoted, zone };
  chart ??= new MarketChart(ui.chart);
  chart.show(bars, quoted, zone, overlays());
  ui.chart.dataset.candles = String(bars.length);
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
  return { ...row, ...dayBounds(ui.day.value, zoneOf(row.exchange)), snapshot: snapshot() };
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
  return new Replay(
    read,
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
        chart?.replayBar(bar);
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
  const mine = ++generation;
  const row = { symbol: read.symbol, exchange: read.exchange };
  const zone = zoneOf(row.exchange);
  keepInUrl();
  const [bars, page] = await Promise.all([api.bars(read, ui.interval.value), api.trades(read, TAPE_PAGE, null)]);
  if (mine !== generation) {
    return;
  }
  say(null);
  const intervalLabel = ui.interval.selectedOptions[0]?.textContent ?? ui.interval.value;
  ui.chartTitle.textContent = `${row.symbol} on ${row.exchange}, ${ui.day.value}: ${bars.length} ${intervalLabel} bars`;
  showBars(bars, [], zone);
  ui.tape.replaceChildren();
  tapePage(page, read);
  // The chart and the tape show first; mid and spread join them once the day's quotes are in.
  run(async () => {
    const quoted = quotesAtBars(bars, await api.quotes(read).catch(noData<api.Quote>));
    if (mine === generation && !replaying) {
      showBars(bars, quoted, zone);
    }
  });
}

async function loadDays(day: string | null = null): Promise<void> {
  const row = chosenSymbol();
  if (!row) {
    return;
  }
  const mine = ++generation;
  const days = (await api.coverage(row, snapshot())).filter((day) => day.rows > 0);
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

async function loadSymbols(): Promise<void> {
  const mine = ++generation;
  const rows = await api.symbols(snapshot());
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
  const [days, gaps] = await Promise.all([api.coverage(null, snapshot()), api.gaps(snapshot())]);
  if (mine === coverageGeneration) {
    renderCoverage(ui.coverage, days, gaps, (row, day) => {
      ui.symbol.value = `${row.exchange}:${row.symbol}`;
      ui.chartTitle.scrollIntoView();
      run(() => loadDays(day));
    });
  }
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

/** A snapshot as the picker lists it: when, what it did, how many rows, which load, its tags. */
function snapshotLabel(s: api.Snapshot): string {
  const parts = [local(s.committed_at), `${s.operation} +${s.added_records ?? "?"} rows`];
  if (s.load_id) parts.push(`load ${s.load_id}`);
  if (s.tags.length) parts.push(`tags ${s.tags.join(", ")}`);
  return parts.join(" · ");
}

async function start(): Promise<void> {
  ui.keyForm.hidden = true;
  ui.market.hidden = false;
  say(null);
  // A lake no trade was ever loaded into has no trades table: no snapshots, and no symbols below.
  const [known, listed] = await Promise.all([api.venues(), api.snapshots().catch(noData<api.Snapshot>)]);
  venues = known;
  fill(
    ui.snapshot,
    [
      ["", "Latest"],
      ...listed.map((s): [string, string] => [s.snapshot_id, snapshotLabel(s)]),
    ],
    [wanted.get("snapshot")],
  );
  await loadSymbols();
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
ui.snapshot.addEventListener("change", () => run(loadSymbols));
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
void showHealth();
if (api.apiKey.get()) {
  run(start);
} else {
  askKey(null);
}
