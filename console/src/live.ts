// Live: the market view follows the day's live tail. Every few seconds it asks for the trades
// since the last one it saw, from the lake and Kafka's tail together (include_live, on the
// platform), and puts them on top of the tape and into the chart's candles, without a reload.

import * as api from "./api";
import { CandleFolder, bucketer, type FormingBar } from "./candles";

const POLL_MS = 2000;
/** Trades per call; a fuller answer is followed at once by the next call. */
const PAGE = 5000;

export interface LiveView {
  /** New trades, oldest first. */
  trades(trades: api.Trade[]): void;
  bar(bar: FormingBar): void;
  status(page: api.LivePage): void;
  failed(error: unknown): void;
}

export class LiveFollow {
  private since: string;
  /** The ids of the trades seen at ``since`` (a later call answers them again). */
  private seen = new Set<string>();
  private readonly candles: CandleFolder;
  private timer: number | null = null;
  private stopped = false;

  /** Follow ``read``'s day from ``from`` (ISO-8601): the start of the chart's last candle, which the
   * first call forms again from all of its trades. */
  constructor(
    private readonly read: api.DayRead,
    from: string,
    interval: string,
    zone: string,
    private readonly view: LiveView,
  ) {
    this.since = from;
    this.candles = new CandleFolder(bucketer(interval, zone));
  }

  start(): void {
    void this.poll();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async poll(): Promise<void> {
    this.timer = null;
    let page: api.LivePage;
    try {
      page = await api.liveTrades({ ...this.read, start: this.since }, PAGE);
    } catch (error) {
      if (!this.stopped) {
        this.stop();
        this.view.failed(error);
      }
      return;
    }
    if (this.stopped) {
      return;
    }
    const fresh = page.rows.filter((trade) => trade.timestamp > this.since || !this.seen.has(trade.message_id));
    for (const trade of fresh) {
      if (trade.timestamp > this.since) {
        this.since = trade.timestamp;
        this.seen = new Set();
      }
      this.seen.add(trade.message_id);
    }
    if (fresh.length) {
      this.view.trades(fresh);
      for (const trade of fresh) {
        this.view.bar(this.candles.add(trade));
      }
    }
    this.view.status(page);
    this.timer = window.setTimeout(() => void this.poll(), page.rows.length >= PAGE ? 0 : POLL_MS);
  }
}
