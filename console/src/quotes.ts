// Mid and spread per bar from the day's quotes: the last two-sided quote before each bar ends,
// in exact decimal text (the inputs' places, one more for the mid).

import type { Bar, Quote } from "./api";

export interface QuoteAtBar {
  mid: string;
  spread: string;
}

function places(text: string): number {
  return text.split(".")[1]?.length ?? 0;
}

function atQuote(bid: string, ask: string): QuoteAtBar {
  const digits = Math.max(places(bid), places(ask));
  const scale = 10 ** (digits + 1);
  // Integers of the smallest unit, so the sums are exact (prices have at most 8 places).
  const [b, a] = [Math.round(Number(bid) * scale), Math.round(Number(ask) * scale)];
  return { mid: ((a + b) / 2 / scale).toFixed(digits + 1), spread: ((a - b) / scale).toFixed(digits) };
}

/** For each bar, the quote in force at its end (null before the first two-sided quote). */
export function quotesAtBars(bars: Bar[], quotes: Quote[]): (QuoteAtBar | null)[] {
  // The API answers in event order.
  const sorted = quotes.filter((q) => q.bid_price !== null && q.ask_price !== null);
  let next = 0;
  let last: Quote | null = null;
  return bars.map((bar) => {
    const end = Date.parse(bar.interval_end);
    while (next < sorted.length && Date.parse(sorted[next]?.timestamp ?? "") < end) {
      last = sorted[next] ?? null;
      next += 1;
    }
    return last?.bid_price && last.ask_price ? atQuote(last.bid_price, last.ask_price) : null;
  });
}
