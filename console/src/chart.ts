// The market chart: candlesticks with VWAP and TWAP lines, and volume in a pane below, on the
// venue's clock (lightweight-charts, bundled at build time).

import {
  CandlestickSeries,
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type LineData,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";

import type { Bar } from "./api";
import type { QuoteAtBar } from "./quotes";
import type { FormingBar } from "./candles";
import { minute, second } from "./time";

/** A span of the time axis, in seconds since the epoch. */
export interface Span {
  from: number;
  to: number;
}

export interface Overlays {
  vwap: boolean;
  twap: boolean;
  quotes: boolean;
}

const UP = "#26a69a";
const DOWN = "#ef5350";

function seconds(iso: string): UTCTimestamp {
  return Math.floor(Date.parse(iso) / 1000) as UTCTimestamp;
}

function line(bars: Bar[], pick: (bar: Bar, index: number) => string | null | undefined): LineData[] {
  const points: LineData[] = [];
  for (const [index, bar] of bars.entries()) {
    const value = pick(bar, index);
    if (value !== null && value !== undefined) {
      points.push({ time: seconds(bar.interval_start), value: Number(value) });
    }
  }
  return points;
}

export class MarketChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private readonly vwap: ISeriesApi<"Line">;
  private readonly twap: ISeriesApi<"Line">;
  private readonly mid: ISeriesApi<"Line">;
  private readonly spread: ISeriesApi<"Line">;
  private zone = "UTC";
  /** Whether the bars shown are shorter than a minute (the crosshair then shows seconds). */
  private fine = false;
  /** Visible-range changes before this time (performance.now()) are the chart's own, not a zoom. */
  private quietUntil = 0;

  constructor(host: HTMLElement) {
    const zoneOf = (): string => this.zone;
    const label = (time: Time): string => {
      const at = time as number;
      return this.fine ? `${minute(at, zoneOf()).slice(0, 10)} ${second(at, zoneOf())}` : minute(at, zoneOf());
    };
    this.chart = createChart(host, {
      autoSize: true,
      layout: { attributionLogo: true },
      localization: { timeFormatter: label },
      timeScale: {
        timeVisible: true,
        // Ticks fall on UTC boundaries; labelled on the venue's clock, a day shows at its midnight.
        tickMarkFormatter: (time: Time) => {
          const text = minute(time as number, zoneOf());
          if (text.endsWith(" 00:00")) return text.slice(0, 10);
          return this.fine ? second(time as number, zoneOf()) : text.slice(11);
        },
      },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.vwap = this.chart.addSeries(LineSeries, { color: "#2962ff", lineWidth: 1, title: "VWAP" });
    this.twap = this.chart.addSeries(LineSeries, { color: "#ff9800", lineWidth: 1, title: "TWAP" });
    this.mid = this.chart.addSeries(LineSeries, { color: "#7e57c2", lineWidth: 1, lineStyle: 2, title: "mid" });
    this.volume = this.chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" } }, 1);
    this.spread = this.chart.addSeries(LineSeries, { color: "#7e57c2", lineWidth: 1, title: "spread" }, 2);
    this.chart.panes()[1]?.setStretchFactor(0.25);
    this.chart.panes()[2]?.setStretchFactor(0.2);
  }

  /** Call ``listener`` with the visible span when the user zooms or scrolls the time axis. */
  onZoom(listener: (span: Span) => void): void {
    this.chart.timeScale().subscribeVisibleTimeRangeChange((range) => {
      if (range && performance.now() >= this.quietUntil) {
        listener({ from: range.from as number, to: range.to as number });
      }
    });
  }

  /** Show ``bars``, fitted to the chart or, with ``visible``, keeping that span in view. */
  show(
    bars: Bar[],
    quoted: (QuoteAtBar | null)[],
    zone: string,
    overlays: Overlays,
    fine = false,
    visible: Span | null = null,
  ): void {
    this.quietUntil = performance.now() + 400;
    this.zone = zone;
    this.fine = fine;
    this.candles.setData(
      bars.map((bar) => ({
        time: seconds(bar.interval_start),
        open: Number(bar.open),
        high: Number(bar.high),
        low: Number(bar.low),
        close: Number(bar.close),
      })),
    );
    this.volume.setData(
      bars.map((bar) => ({
        time: seconds(bar.interval_start),
        value: Number(bar.volume),
        color: Number(bar.close) >= Number(bar.open) ? `${UP}80` : `${DOWN}80`,
      })),
    );
    this.vwap.setData(overlays.vwap ? line(bars, (bar) => bar.vwap) : []);
    this.twap.setData(overlays.twap ? line(bars, (bar) => bar.twap) : []);
    this.mid.setData(overlays.quotes ? line(bars, (_, index) => quoted[index]?.mid) : []);
    this.spread.setData(overlays.quotes ? line(bars, (_, index) => quoted[index]?.spread) : []);
    if (visible) {
      this.chart.timeScale().setVisibleRange({ from: visible.from as UTCTimestamp, to: visible.to as UTCTimestamp });
    } else {
      this.chart.timeScale().fitContent();
    }
  }

  /** Empty every series for a replay, which then adds its candles one trade at a time. */
  startReplay(zone: string): void {
    this.quietUntil = Number.POSITIVE_INFINITY; // a replay's candles are not a zoom
    this.zone = zone;
    for (const series of [this.candles, this.volume, this.vwap, this.twap, this.mid, this.spread]) {
      series.setData([]);
    }
  }

  /** Update the candle ``bar`` (the last one, or a new one after it), as a replay or the live tail forms it. */
  updateBar(bar: FormingBar): void {
    const time = bar.start as UTCTimestamp;
    this.candles.update({ time, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
    const rising = bar.close >= bar.open;
    this.volume.update({ time, value: bar.volume, color: rising ? `${UP}80` : `${DOWN}80` });
  }
}
