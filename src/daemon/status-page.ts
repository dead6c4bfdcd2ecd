import { escapeHtml, htmlDocument, utcStamp } from "../render/html.ts";
import { formatBytes } from "../render/units.ts";
import type { RunRecord } from "./history.ts";

export interface StatusView {
  cluster: string;
  /** Where backups go (`s3://bucket/prefix`); holds no secret. */
  location: string;
  schedule: string;
  timeZone?: string;
  nextRun?: Date;
  ready: boolean;
  lastSuccess?: Date;
  now: Date;
  runs: readonly RunRecord[];
  /** With --continuous: the revision log's recoverable window, one line; absent without the log. */
  pointInTime?: string;
}

function bytes(n: number | undefined): string {
  return n === undefined ? "" : formatBytes(n);
}

/** Re-exported: the one escaping every page uses lives in render/html.ts. */
export { escapeHtml };

const stamp = (d: Date | undefined): string => utcStamp(d);

/**
 * The daemon's status page: the recent runs as a table (time, result, size, duration, revision, backup name,
 * error line) and two inline SVG charts (database size and duration over time). Self-contained: no script, no
 * external asset. Every value is escaped.
 */
export function renderStatusPage(view: StatusView): string {
  const runs = [...view.runs].reverse();
  const rows = runs
    .map(
      (r) => `<tr class="run ${r.result}" data-run-id="${escapeHtml(r.runId)}">
<td>${escapeHtml(stamp(r.startedAt))}</td>
<td class="result">${escapeHtml(r.result)}${r.attempt > 1 ? ` (retry ${r.attempt - 1})` : ""}${r.reason ? ` <span class="reason">${escapeHtml(r.reason)}</span>` : ""}</td>
<td class="num">${escapeHtml(bytes(r.dbBytes))}</td>
<td class="num">${escapeHtml(bytes(r.storedBytes))}</td>
<td class="num">${escapeHtml(r.durationSeconds.toFixed(1))}s</td>
<td class="num">${escapeHtml(r.revision ?? "")}</td>
<td class="key">${escapeHtml(r.key ?? "")}</td>
<td>${escapeHtml([r.verify && r.verify !== "skipped" ? `verify ${r.verify}` : "", r.testRestore ? `test restore ${r.testRestore}` : "", r.pruned ? `pruned ${r.pruned}` : ""].filter(Boolean).join(", "))}</td>
<td class="error">${escapeHtml(r.error ?? "")}</td>
</tr>`,
    )
    .join("\n");
  const ok = view.runs.filter((r) => r.result === "success");
  const sizeChart = lineChart(
    "Database size",
    ok.flatMap((r) => (r.dbBytes !== undefined ? [{ t: r.startedAt.getTime(), v: r.dbBytes }] : [])),
    bytes,
    "db-size-chart",
  );
  const durationChart = lineChart(
    "Duration",
    view.runs.map((r) => ({
      t: r.startedAt.getTime(),
      v: r.durationSeconds,
      failed: r.result === "failure",
    })),
    (v) => `${v.toFixed(1)}s`,
    "duration-chart",
  );
  const state = view.ready ? "ready" : "NOT READY";
  return htmlDocument(
    `etcd-backup: ${view.cluster}`,
    `<h1>etcd-backup: ${escapeHtml(view.cluster)}</h1>
<div class="summary">
<span class="${view.ready ? "state-ready" : "state-not-ready"}" id="state">${escapeHtml(state)}</span>
· schedule <code>${escapeHtml(view.schedule)}</code>${view.timeZone ? ` (${escapeHtml(view.timeZone)})` : ""}
· to <code>${escapeHtml(view.location)}</code>
· last success ${escapeHtml(view.lastSuccess ? stamp(view.lastSuccess) : "never")}
· next run ${escapeHtml(view.nextRun ? stamp(view.nextRun) : "none")}
· page rendered ${escapeHtml(stamp(view.now))}
</div>
${view.pointInTime !== undefined ? `<p id="point-in-time">Point-in-time recovery (restore --at): ${escapeHtml(view.pointInTime)}</p>` : ""}
<div class="charts">
${sizeChart}
${durationChart}
</div>
<table id="runs">
<thead><tr><th>Started (UTC)</th><th>Result</th><th>DB size</th><th>Stored</th><th>Duration</th><th>Revision</th><th>Backup</th><th>Checks</th><th>Error</th></tr></thead>
<tbody>
${rows || `<tr><td colspan="9">no runs yet</td></tr>`}
</tbody>
</table>`,
    `.charts { display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 1rem; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem; }
figcaption { font-weight: 600; margin-bottom: .2rem; }`,
  );
}

interface Point {
  t: number;
  v: number;
  failed?: boolean;
}

/** A small line chart: time on x, value on y from 0, the first and last times and the maximum labelled. */
function lineChart(title: string, points: Point[], format: (v: number) => string, id: string): string {
  const w = 480;
  const h = 180;
  const pad = { l: 70, r: 12, t: 10, b: 28 };
  const pw = w - pad.l - pad.r;
  const ph = h - pad.t - pad.b;
  if (points.length === 0) {
    return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg id="${id}" role="img" aria-label="${escapeHtml(title)}: no data" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg"><text x="${w / 2}" y="${h / 2}" text-anchor="middle" fill="#666">no data yet</text></svg></figure>`;
  }
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(...points.map((p) => p.t));
  const vmax = Math.max(...points.map((p) => p.v)) || 1;
  const x = (t: number) => pad.l + (t1 === t0 ? pw / 2 : ((t - t0) / (t1 - t0)) * pw);
  const y = (v: number) => pad.t + ph - (v / vmax) * ph;
  const path = points
    .map((p, i) => `${i === 0 ? "M" : "L"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`)
    .join(" ");
  const dots = points
    .map(
      (p) =>
        `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3" fill="${p.failed ? "#b3261e" : "#0969da"}"><title>${escapeHtml(`${stamp(new Date(p.t))}: ${format(p.v)}`)}</title></circle>`,
    )
    .join("");
  const label = (text: string, lx: number, ly: number, anchor: string) =>
    `<text x="${lx}" y="${ly}" font-size="11" fill="#555" text-anchor="${anchor}">${escapeHtml(text)}</text>`;
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg id="${id}" role="img" aria-label="${escapeHtml(title)} over time" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg">
<line x1="${pad.l}" y1="${pad.t + ph}" x2="${pad.l + pw}" y2="${pad.t + ph}" stroke="#999"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + ph}" stroke="#999"/>
${label(format(vmax), pad.l - 6, pad.t + 10, "end")}${label(format(0), pad.l - 6, pad.t + ph, "end")}
${label(stamp(new Date(t0)).slice(11, 19), pad.l, h - 8, "start")}${label(stamp(new Date(t1)).slice(11, 19), pad.l + pw, h - 8, "end")}
<path d="${path}" fill="none" stroke="#0969da" stroke-width="1.5"/>${dots}
</svg></figure>`;
}
