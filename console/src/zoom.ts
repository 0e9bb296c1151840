// Zoom: which bars a chart zoomed to a span shows. The finest interval that keeps at most
// MOST_CANDLES candles in view, never coarser than the interval chosen for the day.

import type { Span } from "./chart";
import { intervalSeconds } from "./time";

/** Bar intervals a zoomed chart steps through, finest first. */
const LADDER = ["1s", "5s", "15s", "30s", "1m", "5m", "15m", "30m", "1h"];
/** A zoom fetches the finest bars that put at most this many candles in view. */
const MOST_CANDLES = 240;

export const INTERVAL_NAMES: Record<string, string> = {
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

/** What the chart shows now: the bars' interval, and the span fetched in them when zoomed in. */
export interface Shown {
  interval: string;
  detail: Span | null;
}

/** Keep the bars shown, go back to the whole day, or fetch ``interval`` bars over ``span``. */
export type ZoomPlan = { kind: "keep" } | { kind: "whole day" } | { kind: "fetch"; interval: string; span: Span };

function seconds(interval: string): number {
  return intervalSeconds(interval) ?? 86400;
}

/** The plan for a chart of ``day`` (its bounds) in ``chosen`` bars, showing ``shown``, zoomed to
 * ``view``. A fetch covers the view and half its width either side (scrolling a little needs no
 * new fetch), aligned to the interval and kept inside the day. */
export function planZoom(view: Span, chosen: string, shown: Shown, day: Span): ZoomPlan {
  const width = Math.max(view.to - view.from, 1);
  const want = LADDER.find((interval) => width / seconds(interval) <= MOST_CANDLES);
  if (!want || seconds(want) >= seconds(chosen)) {
    return shown.detail ? { kind: "whole day" } : { kind: "keep" };
  }
  const step = seconds(want);
  const inside = shown.detail !== null && view.from >= shown.detail.from && view.to <= shown.detail.to;
  if (inside && step >= seconds(shown.interval)) {
    return { kind: "keep" }; // the bars shown are fine enough
  }
  const from = Math.max(day.from, Math.floor((view.from - width / 2) / step) * step);
  const to = Math.min(day.to, Math.ceil((view.to + width / 2) / step) * step);
  return { kind: "fetch", interval: want, span: { from, to } };
}
