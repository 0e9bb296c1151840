// Answers asked for ahead of need: the market view and the days a shared link names are asked for
// as soon as the page reads its URL, beside the pickers' lists, and taken (once) by the load that
// would ask for the same; any other load asks for itself.

import * as api from "./api";
import { TAPE_PAGE } from "./tape";

/** A day's bars and the tape's first page. */
export type Market = [api.Bar[], api.Page<api.Trade>];

interface Asked<T> {
  key: string;
  answer: Promise<T>;
}

function market(read: api.DayRead, interval: string): Promise<Market> {
  return Promise.all([api.bars(read, interval), api.trades(read, TAPE_PAGE, null)]);
}

function marketKey(read: api.DayRead, interval: string): string {
  return JSON.stringify([read.symbol, read.exchange, read.start, read.end, read.asOf, interval]);
}

function daysKey(row: api.SymbolRow, asOf: api.AsOf): string {
  return JSON.stringify([row.symbol, row.exchange, asOf]);
}

/** Ask now; a failure is reported by whoever takes the answer. */
function ask<T>(key: string, answer: Promise<T>): Asked<T> {
  answer.catch(() => undefined);
  return { key, answer };
}

export class Ahead {
  private marketAsked: Asked<Market> | null = null;
  private daysAsked: Asked<api.CoverageDay[]> | null = null;

  prefetchMarket(read: api.DayRead, interval: string): void {
    this.marketAsked = ask(marketKey(read, interval), market(read, interval));
  }

  prefetchDays(row: api.SymbolRow, asOf: api.AsOf): void {
    this.daysAsked = ask(daysKey(row, asOf), api.coverage(row, asOf));
  }

  /** ``read``'s market view in ``interval`` bars: the answer asked for ahead if it is this one. */
  market(read: api.DayRead, interval: string): Promise<Market> {
    const asked = this.marketAsked;
    this.marketAsked = null;
    return asked?.key === marketKey(read, interval) ? asked.answer : market(read, interval);
  }

  /** ``row``'s days as of ``asOf``: the answer asked for ahead if it is this one. */
  days(row: api.SymbolRow, asOf: api.AsOf): Promise<api.CoverageDay[]> {
    const asked = this.daysAsked;
    this.daysAsked = null;
    return asked?.key === daysKey(row, asOf) ? asked.answer : api.coverage(row, asOf);
  }
}
