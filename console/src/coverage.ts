// The coverage calendar: per symbol, each venue-local day's trade count, the weekdays without
// trades, and the sequence numbers missing; a day's button opens it in the market view. Below it,
// the last loads with their reject counts.

import type { CoverageDay, Gap, Load, SymbolRow } from "./api";
import { local } from "./time";

type Open = (row: SymbolRow, day: string) => void;

function key(exchange: string, symbol: string, day: string): string {
  return `${exchange}:${symbol}:${day}`;
}

export function renderCoverage(table: HTMLTableElement, days: CoverageDay[], gaps: Gap[], open: Open): void {
  const missing = new Map<string, number>();
  for (const gap of gaps) {
    const at = key(gap.exchange, gap.symbol, gap.day);
    missing.set(at, (missing.get(at) ?? 0) + gap.missing);
  }
  const columns = [...new Set(days.map((d) => d.day))].sort();
  const bySymbol = new Map<string, Map<string, CoverageDay>>();
  for (const day of days) {
    const name = `${day.exchange}:${day.symbol}`;
    const row = bySymbol.get(name) ?? new Map<string, CoverageDay>();
    row.set(day.day, day);
    bySymbol.set(name, row);
  }

  const head = document.createElement("tr");
  for (const title of ["Symbol", ...columns]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.append(th);
  }
  const body = [...bySymbol.entries()].sort().map(([name, row]) => {
    const [exchange = "", symbol = ""] = name.split(":");
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = `${symbol} · ${exchange}`;
    tr.append(th);
    for (const column of columns) {
      const td = tr.insertCell();
      const day = row.get(column);
      if (!day) {
        continue;
      }
      if (day.rows === 0) {
        td.className = "missing";
        td.textContent = "missing";
        continue;
      }
      const lost = missing.get(key(exchange, symbol, column)) ?? 0;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = lost ? `${day.rows} · ${lost} gaps` : String(day.rows);
      button.setAttribute("aria-label", `${symbol} on ${column}: ${day.rows} trades${lost ? `, ${lost} missing` : ""}`);
      button.addEventListener("click", () => open({ exchange, symbol }, column));
      td.className = lost ? "gaps" : "ok";
      td.append(button);
    }
    return tr;
  });
  table.tHead?.replaceChildren(head);
  table.tBodies[0]?.replaceChildren(...body);
}

/** The last loads: when, from what, rows written and rows rejected, and the reject file. */
export function renderLoads(body: HTMLTableSectionElement, empty: HTMLElement, loads: Load[]): void {
  empty.hidden = loads.length > 0;
  body.replaceChildren(
    ...loads.map((load) => {
      const row = document.createElement("tr");
      const values = [
        load.load_id,
        local(load.last_commit_at),
        load.source_kind ?? "",
        String(load.rows_written),
        load.rows_rejected === null ? "not recorded" : String(load.rows_rejected),
        load.reject_file ?? "",
      ];
      for (const value of values) {
        row.insertCell().textContent = value;
      }
      if (load.rows_rejected) {
        row.className = "rejected";
      }
      return row;
    }),
  );
}
