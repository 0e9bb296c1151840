// Venue-local days and clocks: a venue's day runs from its local midnight to the next, and
// every time the console shows is on the venue's wall clock.

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(zone: string): Intl.DateTimeFormat {
  let format = formatters.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(zone, format);
  }
  return format;
}

interface WallTime {
  day: string;
  clock: string;
  offsetMs: number;
}

function wallTime(instantMs: number, zone: string): WallTime {
  const parts: Record<string, string> = {};
  for (const part of wallClock(zone).formatToParts(new Date(instantMs))) {
    parts[part.type] = part.value;
  }
  const [year, month, day] = [Number(parts.year), Number(parts.month), Number(parts.day)];
  const [hour, minute, second] = [Number(parts.hour), Number(parts.minute), Number(parts.second)];
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  return {
    day: `${parts.year}-${parts.month}-${parts.day}`,
    clock: `${parts.hour}:${parts.minute}:${parts.second}`,
    offsetMs: asUtc - Math.floor(instantMs / 1000) * 1000,
  };
}

function localMidnight(year: number, month: number, day: number, zone: string): Date {
  const guess = Date.UTC(year, month - 1, day);
  const first = guess - wallTime(guess, zone).offsetMs;
  return new Date(guess - wallTime(first, zone).offsetMs);
}

/** The UTC bounds [start, end) of the venue-local ``day`` (YYYY-MM-DD) in ``zone``. */
export function dayBounds(day: string, zone: string): { start: string; end: string } {
  const [year, month, date] = day.split("-").map(Number) as [number, number, number];
  return {
    start: localMidnight(year, month, date, zone).toISOString(),
    end: localMidnight(year, month, date + 1, zone).toISOString(),
  };
}

/** ``HH:MM:SS.mmm`` on the venue's clock for an ISO-8601 UTC time from the API. */
export function clock(iso: string, zone: string): string {
  const fraction = /\.(\d{1,3})/.exec(iso)?.[1]?.padEnd(3, "0") ?? "000";
  return `${wallTime(Date.parse(iso), zone).clock}.${fraction}`;
}

/** ``YYYY-MM-DD HH:MM`` on the venue's clock for a time in seconds since the epoch. */
export function minute(epochSeconds: number, zone: string): string {
  const wall = wallTime(epochSeconds * 1000, zone);
  return `${wall.day} ${wall.clock.slice(0, 5)}`;
}

/** ``YYYY-MM-DD HH:MM:SS`` on the browser's clock, for commit times. */
export function local(iso: string): string {
  const wall = wallTime(Date.parse(iso), Intl.DateTimeFormat().resolvedOptions().timeZone);
  return `${wall.day} ${wall.clock}`;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** The length of a sub-day bar interval such as ``5s`` or ``15m`` in seconds; null for a day. */
export function intervalSeconds(interval: string): number | null {
  const match = /^(\d+)([smh])$/.exec(interval);
  return match ? Number(match[1]) * (UNIT_SECONDS[match[2] ?? ""] ?? 0) : null;
}

/** ``HH:MM:SS`` on the venue's clock for a time in seconds since the epoch. */
export function second(epochSeconds: number, zone: string): string {
  return wallTime(epochSeconds * 1000, zone).clock;
}
