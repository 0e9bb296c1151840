// The trade tape: a day's trades in time order, page by page through the cursor API; or, while a
// replay or the live tail feeds it, the latest trades, newest first.

import * as api from "./api";
import { clock } from "./time";

/** Trades per page, and the rows kept while the tape shows the latest trades. */
export const TAPE_PAGE = 50;

/** A cell holding ``text`` (in a ``<time>`` of ``iso`` when given). */
export function cell(row: HTMLTableRowElement, text: string, iso?: string): void {
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

export class Tape {
  private next: { read: api.DayRead; cursor: string; zone: string } | null = null;

  constructor(
    private readonly body: HTMLTableSectionElement,
    private readonly status: HTMLParagraphElement,
    private readonly more: HTMLButtonElement,
  ) {}

  /** Show the first page of ``read``'s trades. */
  first(page: api.Page<api.Trade>, read: api.DayRead, zone: string): void {
    this.body.replaceChildren();
    this.add(page, read, zone);
  }

  /** Append the next page ("More trades"). */
  async nextPage(): Promise<void> {
    const next = this.next;
    if (next) {
      this.add(await api.trades(next.read, TAPE_PAGE, next.cursor), next.read, next.zone);
    }
  }

  /** Empty the tape for the latest trades, newest first, saying so in ``status``. */
  latest(status: string): void {
    this.body.replaceChildren();
    this.next = null;
    this.more.hidden = true;
    this.status.textContent = status;
  }

  /** Put ``trades`` (oldest first) on top, keeping the newest ``TAPE_PAGE``. */
  prepend(trades: api.Trade[], zone: string): void {
    this.body.prepend(...trades.map((trade) => tradeRow(trade, zone)).reverse());
    while (this.body.rows.length > TAPE_PAGE) {
      this.body.rows[this.body.rows.length - 1]?.remove();
    }
  }

  private add(page: api.Page<api.Trade>, read: api.DayRead, zone: string): void {
    this.body.append(...page.rows.map((trade) => tradeRow(trade, zone)));
    this.next = page.nextCursor ? { read, cursor: page.nextCursor, zone } : null;
    this.more.hidden = this.next === null;
    const count = this.body.rows.length;
    this.status.textContent = this.next ? `The first ${count} trades of the day.` : `All ${count} trades of the day.`;
  }
}
