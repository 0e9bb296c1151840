// The pickers: symbol and venue, day (through a later day), bar interval and overlays, read and written here, and the
// page's URL, which carries them (and the "As of" version) so a view can be shared.

import type { AsOf, SymbolRow } from "./api";
import type { Overlays } from "./chart";

export interface PickerElements {
  symbol: HTMLSelectElement;
  day: HTMLSelectElement;
  through: HTMLSelectElement;
  interval: HTMLSelectElement;
  vwap: HTMLInputElement;
  twap: HTMLInputElement;
  quotes: HTMLInputElement;
}

/** Offer ``options`` ([value, label]) in ``select``, choosing the first of ``preferred`` offered. */
export function fill(select: HTMLSelectElement, options: [string, string][], preferred: (string | null)[]): void {
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  const values = new Set(options.map(([value]) => value));
  const pick = preferred.find((value) => value !== null && values.has(value));
  if (pick !== undefined && pick !== null) {
    select.value = pick;
  }
}

export class Pickers {
  constructor(private readonly el: PickerElements) {}

  /** The symbol and venue chosen. */
  symbol(): SymbolRow | null {
    const [exchange, symbol] = this.el.symbol.value.split(":");
    return exchange && symbol ? { exchange, symbol } : null;
  }

  overlays(): Overlays {
    return { vwap: this.el.vwap.checked, twap: this.el.twap.checked, quotes: this.el.quotes.checked };
  }

  /** Choose the interval and overlays ``wanted`` (the URL's query) names. */
  fromUrl(wanted: URLSearchParams): void {
    const interval = wanted.get("interval");
    if (interval && [...this.el.interval.options].some((option) => option.value === interval)) {
      this.el.interval.value = interval;
    }
    this.el.vwap.checked = wanted.get("vwap") !== "off";
    this.el.quotes.checked = wanted.get("quotes") !== "off";
    this.el.twap.checked = wanted.get("twap") !== "off";
  }

  /** Write the view (and the version ``asOf``) into the page's URL. */
  keepInUrl(asOf: AsOf): void {
    const row = this.symbol();
    const state = new URLSearchParams();
    if (row) {
      state.set("symbol", row.symbol);
      state.set("exchange", row.exchange);
    }
    if (this.el.day.value) state.set("day", this.el.day.value);
    if (this.el.through.value) state.set("through", this.el.through.value);
    if (this.el.interval.value) state.set("interval", this.el.interval.value);
    if (asOf && "snapshot" in asOf) state.set("snapshot", asOf.snapshot);
    else if (asOf && "tag" in asOf) state.set("tag", asOf.tag);
    else if (asOf) state.set("at", asOf.time);
    if (!this.el.vwap.checked) state.set("vwap", "off");
    if (!this.el.twap.checked) state.set("twap", "off");
    if (!this.el.quotes.checked) state.set("quotes", "off");
    history.replaceState(null, "", `?${state.toString()}`);
  }
}
