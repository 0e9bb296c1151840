// Readiness (the header's line) and pipeline health (GET /v1/pipeline, every few seconds): each table's last commit and files, this
// API's degradation level and breakers, and on the platform the sink's and feed's state from
// Prometheus; the embedded profile says why it has no stream part.

import type { FeedHealth, Pipeline, Readiness, SinkHealth } from "./api";
import { local } from "./time";

function age(seconds: number | null): string {
  if (seconds === null) return "never";
  if (seconds < 120) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function breakers(states: Record<string, string>): string {
  const open = Object.entries(states).filter(([, state]) => state !== "closed");
  return open.length ? open.map(([name, state]) => `${name} ${state}`).join(", ") : "all closed";
}

/** The header's line from ``/health/ready``: each dependency's probe, and the breakers not closed. */
export function readiness(ready: Readiness): string {
  const parts = ready.dependencies.map(
    (d) => `${d.name} ${d.status === "ok" ? `${d.latency_ms.toFixed(1)} ms` : `failing: ${d.message ?? ""}`}`,
  );
  const open = Object.entries(ready.breakers).filter(([, state]) => state !== "closed");
  parts.push(open.length ? `breakers ${open.map(([name, state]) => `${name} ${state}`).join(", ")}` : "breakers closed");
  return `${ready.status === "ok" ? "Ready" : "Not ready"}: ${parts.join(" · ")}`;
}

function line(label: string, text: string): HTMLParagraphElement {
  const p = document.createElement("p");
  const name = document.createElement("strong");
  name.textContent = `${label}: `;
  p.append(name, text);
  return p;
}

function lakeTable(pipeline: Pipeline): HTMLElement {
  if (!pipeline.lake) {
    return line("Lake", `${pipeline.lake_status} (${pipeline.lake_reason ?? ""})`);
  }
  const table = document.createElement("table");
  table.id = "pipeline-lake";
  const head = table.createTHead().insertRow();
  for (const title of ["Table", "Last commit", "Age", "Snapshots", "Rows", "Data files", "Partitions", "Fullest partition's files"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.append(th);
  }
  const body = table.createTBody();
  for (const t of pipeline.lake) {
    const row = body.insertRow();
    row.dataset.table = t.table;
    const values = t.exists
      ? [
          t.table,
          t.last_commit_at ? local(t.last_commit_at) : "",
          age(t.last_commit_age_s),
          String(t.snapshots),
          String(t.rows),
          String(t.data_files),
          String(t.partitions),
          String(t.max_files_per_partition),
        ]
      : [t.table, "not created yet", "", "", "", "", "", ""];
    for (const value of values) {
      row.insertCell().textContent = value;
    }
  }
  return table;
}

function sinkLine(sink: SinkHealth): HTMLParagraphElement {
  if (!sink.instances) {
    return line("Sink", "no sink process is scraped");
  }
  const lag = sink.consumer_lag.map((t) => `${t.topic} ${t.messages}`).join(", ");
  const dead = sink.dead_letters.reduce((sum, t) => sum + t.messages, 0);
  const parts = [
    `${sink.instances_up} of ${sink.instances} up`,
    `consumer lag ${sink.consumer_lag_total ?? "unknown"}${lag ? ` (${lag})` : ""}`,
    `last commit ${age(sink.last_commit_age_s)}`,
    sink.paused.length ? `paused: ${sink.paused.join(", ")}` : "consuming",
    `breakers ${breakers(sink.breakers)}`,
    `${dead} dead letters`,
  ];
  return line("Sink", parts.join(" · "));
}

function feedLine(feed: FeedHealth): HTMLParagraphElement {
  if (!feed.instances) {
    return line("Feed", "no live feed process is scraped");
  }
  const exchanges = feed.exchanges.map((e) => {
    const state = e.connected === null ? "unknown" : e.connected ? "connected" : "disconnected";
    const lag = e.lag_p99_s === null ? "" : `, lag p99 ${e.lag_p99_s.toFixed(2)} s`;
    return `${e.exchange} ${state}${lag}, last message ${age(e.last_message_age_s)}, ${e.reconnects ?? 0} reconnects`;
  });
  return line("Feed", [`${feed.instances_up} of ${feed.instances} up`, ...exchanges].join(" · "));
}

/** Render ``pipeline`` into ``host``. */
export function renderPipeline(host: HTMLElement, pipeline: Pipeline): void {
  host.dataset.profile = pipeline.profile;
  const parts: HTMLElement[] = [line("Checked", `${local(pipeline.checked_at)} (${pipeline.profile} profile)`), lakeTable(pipeline)];
  if (pipeline.api) {
    const api = pipeline.api;
    parts.push(
      line("API", `degradation level ${api.degradation_level}, ${api.degradation_meaning} · breakers ${breakers(api.breakers)}`),
    );
  }
  if (pipeline.stream) {
    parts.push(sinkLine(pipeline.stream.sink), feedLine(pipeline.stream.feed));
  } else {
    parts.push(line("Stream", `${pipeline.stream_status}: ${pipeline.stream_reason ?? ""}`));
  }
  host.replaceChildren(...parts);
}
