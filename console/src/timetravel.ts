// Time travel: the "As of" picker (latest, a snapshot, a tag, or the snapshot current at a time)
// and the trades table's snapshot timeline, whose rows open the view as of that snapshot.

import type { AsOf, Snapshot } from "./api";
import { local } from "./time";

/** The "As of" choice that reads the snapshot current at the time typed beside it. */
const AT_TIME = "time";

/** A snapshot as the picker lists it: when, what it did, how many rows, which load, its tags. */
function snapshotLabel(s: Snapshot): string {
  const parts = [local(s.committed_at), `${s.operation} +${s.added_records ?? "?"} rows`];
  if (s.load_id) parts.push(`load ${s.load_id}`);
  if (s.tags.length) parts.push(`tags ${s.tags.join(", ")}`);
  return parts.join(" · ");
}

function group(label: string, options: HTMLOptionElement[]): HTMLOptGroupElement {
  const optgroup = document.createElement("optgroup");
  optgroup.label = label;
  optgroup.append(...options);
  return optgroup;
}

/** ``YYYY-MM-DDTHH:MM:SS.mmm`` on the browser's clock: a datetime-local input's value. */
function inputValue(iso: string): string {
  const millis = String(Date.parse(iso) % 1000).padStart(3, "0");
  return `${local(iso).replace(" ", "T")}.${millis}`;
}

export class AsOfPicker {
  constructor(
    private readonly select: HTMLSelectElement,
    private readonly time: HTMLInputElement,
  ) {}

  /** List the latest, each snapshot, each tag and "a point in time", choosing what ``wanted``
   * (the URL's ``snapshot``, ``tag`` or ``at``) names when it is there. */
  fill(listed: Snapshot[], wanted: URLSearchParams): void {
    const tags = listed.flatMap((s) => s.tags.map((tag) => new Option(`${tag} · ${local(s.committed_at)}`, `tag:${tag}`)));
    this.select.replaceChildren(
      new Option("Latest", ""),
      group(
        "Snapshots",
        listed.map((s) => new Option(snapshotLabel(s), s.snapshot_id)),
      ),
      ...(tags.length ? [group("Tags", tags)] : []),
      new Option("A point in time…", AT_TIME),
    );
    const snapshot = wanted.get("snapshot");
    const tag = wanted.get("tag");
    const at = wanted.get("at");
    const values = new Set([...this.select.options].map((option) => option.value));
    if (snapshot && values.has(snapshot)) {
      this.select.value = snapshot;
    } else if (tag && values.has(`tag:${tag}`)) {
      this.select.value = `tag:${tag}`;
    } else if (at && !Number.isNaN(Date.parse(at))) {
      this.select.value = AT_TIME;
      this.time.value = inputValue(at);
    }
    this.time.hidden = this.select.value !== AT_TIME;
  }

  /** Whether the choice names a version to read (a point in time needs its time typed). */
  get complete(): boolean {
    return this.select.value !== AT_TIME || this.asOf() !== null;
  }

  /** Show the time field when "a point in time" is chosen. */
  changed(): void {
    this.time.hidden = this.select.value !== AT_TIME;
    if (!this.time.hidden && !this.time.value) {
      this.time.focus();
    }
  }

  /** Choose ``snapshot`` (from the timeline). */
  choose(snapshot: string): void {
    this.select.value = snapshot;
    this.time.hidden = true;
  }

  /** The version ``wanted`` (the URL's ``snapshot``, ``tag`` or ``at``) names, before the picker
   * is filled. */
  asOfIn(wanted: URLSearchParams): AsOf {
    const snapshot = wanted.get("snapshot");
    const tag = wanted.get("tag");
    const at = wanted.get("at");
    if (snapshot) return { snapshot };
    if (tag) return { tag };
    if (at && !Number.isNaN(Date.parse(at))) return { time: new Date(at).toISOString() };
    return null;
  }

  /** The version of the trades table the picker names. */
  asOf(): AsOf {
    const value = this.select.value;
    if (!value) return null;
    if (value === AT_TIME) {
      const typed = this.time.value ? new Date(this.time.value) : null;
      return typed && !Number.isNaN(typed.getTime()) ? { time: typed.toISOString() } : null;
    }
    if (value.startsWith("tag:")) return { tag: value.slice(4) };
    return { snapshot: value };
  }
}

/** A sink commit's Kafka positions: each topic's partitions and the next offset of each. */
function offsets(s: Snapshot): string {
  const byTopic = new Map<string, string[]>();
  for (const at of s.kafka_offsets ?? []) {
    byTopic.set(at.topic, [...(byTopic.get(at.topic) ?? []), `${at.partition}:${at.next_offset}`]);
  }
  return [...byTopic].map(([topic, parts]) => `${topic} ${parts.join(" ")}`).join("; ");
}

function cell(row: HTMLTableRowElement, text: string): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

/** The snapshot timeline, newest first; each row's button opens the view as of that snapshot. */
export function renderHistory(body: HTMLTableSectionElement, listed: Snapshot[], open: (snapshot: string) => void): void {
  body.replaceChildren(
    ...listed.map((s) => {
      const row = document.createElement("tr");
      const time = document.createElement("time");
      time.dateTime = s.committed_at;
      time.textContent = local(s.committed_at);
      row.insertCell().append(time);
      cell(row, s.snapshot_id);
      cell(row, s.operation);
      cell(row, s.added_records === null ? "" : String(s.added_records));
      cell(row, s.total_records === null ? "" : String(s.total_records));
      cell(row, [s.source ?? "", s.load_id ?? ""].filter(Boolean).join(" "));
      cell(row, offsets(s));
      cell(row, s.tags.join(", "));
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "View as of this";
      button.addEventListener("click", () => open(s.snapshot_id));
      row.insertCell().append(button);
      return row;
    }),
  );
}
