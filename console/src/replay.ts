// Replay: the day's trades (POST /v1/replay, page by page from one snapshot) played on a virtual
// venue clock at a chosen speed; each trade goes to the tape and into the forming candle.

import * as api from "./api";
import { bucketer, CandleFolder, type FormingBar } from "./candles";

const BATCH = 2000;
const TICK_MS = 100;

export interface ReplayView {
  /** Called once at the start, to clear the chart and the tape. */
  reset(): void;
  trade(trade: api.Trade): void;
  bar(bar: FormingBar): void;
  progress(played: number, total: number, clockMs: number, done: boolean): void;
  failed(error: unknown): void;
}

export class Replay {
  private queue: api.Trade[] = [];
  private next = 0;
  private cursor: string | null = null;
  private fetching = false;
  private total = 0;
  private played = 0;
  private clockMs = 0;
  private timer: number | null = null;
  private readonly candles: CandleFolder;

  constructor(
    private readonly read: api.DayRead,
    private readonly pinned: api.SnapshotId | null,
    interval: string,
    zone: string,
    private readonly view: ReplayView,
    public speed: number,
  ) {
    this.candles = new CandleFolder(bucketer(interval, zone));
  }

  get playing(): boolean {
    return this.timer !== null;
  }

  async start(): Promise<void> {
    this.view.reset();
    const first = await api.replay(this.read, this.pinned, BATCH, null);
    this.take(first);
    this.total = first.total;
    this.clockMs = first.rows[0] ? Date.parse(first.rows[0].timestamp) : Date.parse(this.read.start);
    this.resume();
  }

  resume(): void {
    this.timer ??= window.setInterval(() => this.tick(), TICK_MS);
  }

  pause(): void {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
  }

  private take(page: api.ReplayPage): void {
    this.queue = [...this.queue.slice(this.next), ...page.rows];
    this.next = 0;
    this.cursor = page.nextCursor;
  }

  private tick(): void {
    this.clockMs += TICK_MS * this.speed;
    while (this.next < this.queue.length) {
      const trade = this.queue[this.next];
      if (!trade || Date.parse(trade.timestamp) > this.clockMs) {
        break;
      }
      this.next += 1;
      this.play(trade);
    }
    const done = this.cursor === null && this.next >= this.queue.length;
    if (!done && this.cursor !== null && !this.fetching && this.queue.length - this.next < BATCH / 2) {
      this.fetching = true;
      api
        .replay(this.read, this.pinned, BATCH, this.cursor)
        .then((page) => this.take(page))
        .catch((error: unknown) => {
          this.pause();
          this.view.failed(error);
        })
        .finally(() => {
          this.fetching = false;
        });
    }
    if (done) {
      this.pause();
    }
    this.view.progress(this.played, this.total, this.clockMs, done);
  }

  private play(trade: api.Trade): void {
    this.played += 1;
    this.view.trade(trade);
    this.view.bar(this.candles.add(trade));
  }
}
