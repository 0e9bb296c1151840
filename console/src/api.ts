// The K2 JSON API as the console calls it: the key from this tab's session storage in
// X-API-Key, every failure turned into an ApiError carrying the error body's message.

/** Snapshot ids are 64-bit integers: kept as their exact decimal text, never as a JS number. */
export type SnapshotId = string;

export interface SymbolRow {
  exchange: string;
  symbol: string;
}

export interface Snapshot {
  snapshot_id: SnapshotId;
  committed_at: string;
  operation: string;
  added_records: number | null;
  total_records: number | null;
  load_id: string | null;
  tags: string[];
  /** Which K2 writer made it: load, stream, compaction, rollup; null for another engine. */
  source: string | null;
  /** The next Kafka offset of each partition the sink had committed with it; null if not the sink's. */
  kafka_offsets: { topic: string; partition: number; next_offset: number }[] | null;
}

/** One load (``k2 ingest``) of a table: its commits, rows written and rows rejected. */
export interface Load {
  load_id: string;
  first_commit_at: string;
  last_commit_at: string;
  commits: number;
  rows_written: number;
  rows_rejected: number | null;
  reject_file: string | null;
  source_kind: string | null;
}

export interface CoverageDay {
  symbol: string;
  exchange: string;
  day: string;
  rows: number;
}

export interface Gap {
  symbol: string;
  exchange: string;
  day: string;
  missing: number;
}

export interface Readiness {
  status: string;
  dependencies: { name: string; status: string; latency_ms: number; message: string | null }[];
  breakers: Record<string, string>;
}

export interface Bar {
  interval_start: string;
  interval_end: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  vwap: string | null;
  twap: string | null;
}

export interface Trade {
  message_id: string;
  timestamp: string;
  price: string;
  quantity: string;
  trade_conditions: string[] | null;
  bid_price: string | null;
  ask_price: string | null;
}

export interface Quote {
  timestamp: string;
  bid_price: string | null;
  ask_price: string | null;
}

export interface Venue {
  name: string;
  timezone: string;
}

interface Rows<T> {
  data: T[];
  meta?: { snapshot_id?: SnapshotId | null; live_rows?: number; lake_complete_until?: string | null };
  pagination?: { next_cursor: string | null };
}

export interface Page<T> {
  rows: T[];
  nextCursor: string | null;
  /** The trades snapshot the page was read from (what a tag or a time resolved to). */
  snapshotId: SnapshotId | null;
}

/** A refused or failed call: the HTTP status and the API's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly correlationId: string | null,
  ) {
    super(message);
  }

  /** Whether the key is what the API refused (missing or not a valid key). */
  get refusedKey(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

const KEY = "k2.api-key";

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string): void => sessionStorage.setItem(KEY, key),
  forget: (): void => sessionStorage.removeItem(KEY),
};

const BIG_INTEGERS = new Set(["snapshot_id", "parent_id"]);

// JSON.parse with source text access (Chrome 114, Firefox 135, Safari 18.4) keeps the exact
// digits of the 64-bit ids, which a double would round.
type Reviver = (key: string, value: unknown, context?: { source?: string }) => unknown;
const exactIds: Reviver = (key, value, context) =>
  BIG_INTEGERS.has(key) && typeof value === "number" ? (context?.source ?? String(value)) : value;

function parse(text: string): unknown {
  try {
    return JSON.parse(text, exactIds as (key: string, value: unknown) => unknown);
  } catch {
    return null;
  }
}

function errorOf(status: number, statusText: string, body: unknown): ApiError {
  const error = (body as { error?: { code?: unknown; message?: unknown; correlation_id?: unknown } } | null)
    ?.error;
  if (error && typeof error.message === "string") {
    const code = typeof error.code === "string" ? error.code : `HTTP_${status}`;
    const correlation = typeof error.correlation_id === "string" ? error.correlation_id : null;
    return new ApiError(status, code, error.message, correlation);
  }
  return new ApiError(status, `HTTP_${status}`, `the API answered ${status} ${statusText}`.trim(), null);
}

async function call<T>(path: string, body?: object): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", "X-API-Key": apiKey.get() ?? "" };
  const init: RequestInit = { headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.method = "POST";
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (failure) {
    throw new ApiError(0, "UNREACHABLE", `the API did not answer (${String(failure)})`, null);
  }
  const parsed = parse(await response.text());
  if (!response.ok) {
    throw errorOf(response.status, response.statusText, parsed);
  }
  return parsed as T;
}

function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") {
      search.set(name, String(value));
    }
  }
  return search.toString();
}

/** Which version of the trades table a view reads: a snapshot, the snapshot a tag names, or the
 * one current at an instant (ISO-8601 UTC); null for the latest. */
export type AsOf = { snapshot: SnapshotId } | { tag: string } | { time: string } | null;

/** The API's time-travel parameters for ``asOf`` (at most one is set). */
export function asOfParams(asOf: AsOf): { as_of_snapshot?: SnapshotId; as_of_tag?: string; as_of_time?: string } {
  if (asOf === null) return {};
  if ("snapshot" in asOf) return { as_of_snapshot: asOf.snapshot };
  if ("tag" in asOf) return { as_of_tag: asOf.tag };
  return { as_of_time: asOf.time };
}

/** A read of a time range (a venue-local day, or part of one), as of a version of the trades table. */
export interface DayRead {
  symbol: string;
  exchange: string;
  start: string;
  end: string;
  asOf: AsOf;
}

export async function venues(): Promise<Record<string, Venue>> {
  return call<Record<string, Venue>>("venues.json");
}

export async function symbols(asOf: AsOf): Promise<SymbolRow[]> {
  return (await call<Rows<SymbolRow>>(`/v1/symbols?${query(asOfParams(asOf))}`)).data;
}

export async function snapshots(): Promise<Snapshot[]> {
  return (await call<Rows<Snapshot>>(`/v1/snapshots?${query({ table: "trades", limit: 50 })}`)).data;
}

/** The trades table's loads, newest first. */
export async function loads(): Promise<Load[]> {
  return (await call<Rows<Load>>(`/v1/loads?${query({ table: "trades", limit: 10 })}`)).data;
}

/** Days with trades (and weekdays without) of one symbol, or of every symbol when ``row`` is null. */
export async function coverage(row: SymbolRow | null, asOf: AsOf): Promise<CoverageDay[]> {
  const search = query({ symbol: row?.symbol, exchange: row?.exchange, ...asOfParams(asOf) });
  return (await call<Rows<CoverageDay>>(`/v1/coverage?${search}`)).data;
}

export async function gaps(asOf: AsOf): Promise<Gap[]> {
  return (await call<Rows<Gap>>(`/v1/coverage/gaps?${query(asOfParams(asOf))}`)).data;
}

export interface LakeTable {
  table: string;
  exists: boolean;
  last_commit_at: string | null;
  last_commit_age_s: number | null;
  snapshots: number;
  rows: number;
  data_files: number;
  partitions: number;
  max_files_per_partition: number;
}

interface TopicMessages {
  topic: string;
  messages: number;
}

interface JobHealth {
  up: boolean;
  instances: number;
  instances_up: number;
  breakers: Record<string, string>;
  dead_letters: TopicMessages[];
}

export interface SinkHealth extends JobHealth {
  consumer_lag: TopicMessages[];
  consumer_lag_total: number | null;
  last_commit_age_s: number | null;
  paused: string[];
}

export interface FeedHealth extends JobHealth {
  exchanges: {
    exchange: string;
    connected: boolean | null;
    lag_p99_s: number | null;
    last_message_age_s: number | null;
    reconnects: number | null;
  }[];
}

/** GET /v1/pipeline: the lake's tables, this API process, and on the platform the sink and feed. */
export interface Pipeline {
  checked_at: string;
  profile: string;
  lake: LakeTable[] | null;
  lake_status: string;
  lake_reason: string | null;
  api: { degradation_level: number; degradation_meaning: string; breakers: Record<string, string> } | null;
  stream: { prometheus_url: string; sink: SinkHealth; feed: FeedHealth } | null;
  stream_status: string;
  stream_reason: string | null;
}

export async function pipeline(): Promise<Pipeline> {
  return (await call<{ data: Pipeline }>("/v1/pipeline")).data;
}

/** Whether the API can serve reads now (no key needed); a 503 still carries the same body. */
export async function readiness(): Promise<Readiness> {
  const response = await fetch("/health/ready", { headers: { Accept: "application/json" } });
  return (await response.json()) as Readiness;
}

export async function bars(read: DayRead, interval: string): Promise<Bar[]> {
  const body = {
    symbols: [read.symbol],
    exchange: read.exchange,
    interval,
    metrics: ["ohlcv", "vwap", "twap"],
    start_time: read.start,
    end_time: read.end,
    ...asOfParams(read.asOf),
  };
  return (await call<Rows<Bar>>("/v1/aggregations", body)).data;
}

/** GET /v1/trades of ``read``'s symbol and range, with ``extra`` parameters. */
async function tradesOf(
  read: DayRead,
  limit: number,
  extra: Record<string, string | null | undefined>,
): Promise<Rows<Trade>> {
  const search = query({
    symbol: read.symbol,
    exchange: read.exchange,
    start_time: read.start,
    end_time: read.end,
    limit,
    ...extra,
  });
  return call<Rows<Trade>>(`/v1/trades?${search}`);
}

export async function trades(read: DayRead, limit: number, cursor: string | null): Promise<Page<Trade>> {
  const answer = await tradesOf(read, limit, { cursor, ...asOfParams(read.asOf), with_quotes: "true" });
  return {
    rows: answer.data,
    nextCursor: answer.pagination?.next_cursor ?? null,
    snapshotId: answer.meta?.snapshot_id ?? null,
  };
}

/** Trades of a range from the lake and Kafka's live tail together (``include_live``), in time order. */
export interface LivePage {
  rows: Trade[];
  /** How many of them came from the tail, not yet in the lake. */
  liveRows: number;
  /** The lake holds every trade before this time; null when it holds none of the tail's partitions. */
  lakeCompleteUntil: string | null;
}

export async function liveTrades(read: DayRead, limit: number): Promise<LivePage> {
  const answer = await tradesOf(read, limit, { include_live: "true" });
  return {
    rows: answer.data,
    liveRows: answer.meta?.live_rows ?? 0,
    lakeCompleteUntil: answer.meta?.lake_complete_until ?? null,
  };
}

const QUOTE_PAGE = 50_000;

/** The day's best bid/ask updates (time and both sides only), every page, from the quotes table's
 * latest snapshot: a trades snapshot id names nothing in the quotes table.
 */
export async function quotes(read: DayRead): Promise<Quote[]> {
  const rows: Quote[] = [];
  let cursor: string | null = null;
  do {
    const body = {
      symbols: [read.symbol],
      exchange: read.exchange,
      start_time: read.start,
      end_time: read.end,
      fields: ["timestamp", "bid_price", "ask_price"],
      limit: QUOTE_PAGE,
      cursor,
    };
    const page: Rows<Quote> = await call<Rows<Quote>>("/v1/quotes/query", body);
    rows.push(...page.data);
    cursor = page.pagination?.next_cursor ?? null;
  } while (cursor !== null);
  return rows;
}

export interface ReplayPage {
  rows: Trade[];
  nextCursor: string | null;
  total: number;
}

/** The next page of a replay of the day's trades in event order, from one snapshot (``pinned``:
 * the one the market view read, whatever tag or time named it). */
export async function replay(
  read: DayRead,
  pinned: SnapshotId | null,
  batch: number,
  cursor: string | null,
): Promise<ReplayPage> {
  const body = {
    data_type: "trades",
    symbols: [read.symbol],
    exchange: read.exchange,
    start_time: read.start,
    end_time: read.end,
    batch_size: batch,
    snapshot_id: pinned,
    cursor,
  };
  const answer = await call<Rows<Trade> & { progress: { total: number } }>("/v1/replay", body);
  return { rows: answer.data, nextCursor: answer.pagination?.next_cursor ?? null, total: answer.progress.total };
}
