// Candles formed in the browser from trades one at a time, by a replay or the live tail.

import type { Trade } from "./api";
import { dayBounds, intervalSeconds, minute } from "./time";

/** A candle as the page forms it: prices as numbers, the chart's unit. */
export interface FormingBar {
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** The start (seconds since the epoch) of the ``interval`` bar holding an instant (milliseconds).
 * Bars of up to an hour line up on UTC (venues' offsets are whole hours); a day is the venue's. */
export function bucketer(interval: string, zone: string): (ms: number) => number {
  const seconds = intervalSeconds(interval);
  return seconds
    ? (ms) => Math.floor(ms / (seconds * 1000)) * seconds
    : (ms) => Date.parse(dayBounds(minute(ms / 1000, zone).slice(0, 10), zone).start) / 1000;
}

/** Folds trades, in time order, into the candle they fall in. */
export class CandleFolder {
  private forming: FormingBar | null = null;

  constructor(private readonly bucketOf: (ms: number) => number) {}

  /** Add ``trade``; the candle it changed or started. */
  add(trade: Trade): FormingBar {
    const [price, size] = [Number(trade.price), Number(trade.quantity)];
    const start = this.bucketOf(Date.parse(trade.timestamp));
    const bar = this.forming;
    if (bar && bar.start === start) {
      bar.high = Math.max(bar.high, price);
      bar.low = Math.min(bar.low, price);
      bar.close = price;
      bar.volume += size;
      return bar;
    }
    this.forming = { start, open: price, high: price, low: price, close: price, volume: size };
    return this.forming;
  }
}

/** The number of candles a chart holds while bars are formed, in time order, after ``count``
 * candles of which the last started at ``last`` (seconds; null: none). */
export class CandleCount {
  constructor(
    private count: number,
    private last: number | null,
  ) {}

  /** Count ``bar`` (a new candle if it starts after the last); the candles now. */
  add(bar: FormingBar): number {
    if (this.last === null || bar.start > this.last) {
      this.last = bar.start;
      this.count += 1;
    }
    return this.count;
  }
}
