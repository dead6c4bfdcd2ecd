import { escapeHtml, htmlDocument, utcStamp } from "../../render/html.ts";
import { formatBytes } from "../../render/units.ts";
import type { BackupRow, ClusterStatus, OperatorStatus, ScheduleRow } from "./board.ts";

/**
 * The operator's status page (`/` on `--metrics-addr`): one section per cluster with its backoff state, backup
 * counts by phase, schedules, newest backups and failures. Built on the daemon's page pieces (render/html.ts):
 * self-contained, no script, every value escaped. The same facts are served as `/status.json`.
 */
export function renderOperatorStatusPage(status: OperatorStatus): string {
  const clusters = status.clusters.map(clusterSection).join("\n");
  const failing = status.clusters.filter((c) => c.backingOff || c.failures.length > 0).length;
  const body = `<h1>etcd-backup operator</h1>
<div class="summary">
<span id="role" class="${status.role === "leader" ? "state-ready" : "state-not-ready"}">${escapeHtml(status.role)}</span>
· ${status.clusters.length} cluster${status.clusters.length === 1 ? "" : "s"}
· ${failing} with failures or backing off
· page rendered ${escapeHtml(utcStamp(status.generatedAt))}
· <a href="status.json">status.json</a> · <a href="metrics">metrics</a>
</div>
${status.role === "standby" ? `<p>This replica is on standby: the leader's page shows the clusters.</p>` : ""}
${clusters || (status.role === "leader" ? "<p>No EtcdBackup or EtcdBackupSchedule yet.</p>" : "")}`;
  return htmlDocument(
    "etcd-backup operator",
    body,
    ".backoff { color: #b3261e; font-weight: 600; }\ntd.time { white-space: nowrap; }",
  );
}

function clusterSection(c: ClusterStatus): string {
  const counts = (["Succeeded", "Failed", "Running", "Pending"] as const)
    .map((p) => `${c.counts[p]} ${p.toLowerCase()}`)
    .join(", ");
  const state = c.backingOff
    ? `<span class="backoff">backing off until ${escapeHtml(utcStamp(c.backingOff.until))} after ${c.backingOff.failures} unreachable run${c.backingOff.failures === 1 ? "" : "s"}</span>`
    : `<span class="state-ready">not backing off</span>`;
  return `<section class="cluster" data-cluster="${escapeHtml(c.name)}">
<h2>${escapeHtml(c.name)}</h2>
<div class="summary">${state} · backups: ${escapeHtml(counts)}</div>
${c.schedules.length ? schedulesTable(c.schedules) : ""}
<h3>Latest backups</h3>
${backupsTable(c.latestBackups)}
${c.failures.length ? `<h3>Failures</h3>\n<ul class="failures">\n${c.failures.map(failureItem).join("\n")}\n</ul>` : ""}
</section>`;
}

function schedulesTable(rows: readonly ScheduleRow[]): string {
  const tr = (s: ScheduleRow) => `<tr>
<td>${escapeHtml(`${s.namespace}/${s.name}`)}${s.kind === "EtcdBackupSchedule" ? "" : ` <span class="reason">${escapeHtml(s.kind)}</span>`}</td>
<td class="time"><code>${escapeHtml(s.schedule)}</code>${s.timeZone ? ` (${escapeHtml(s.timeZone)})` : ""}</td>
<td>${s.suspended ? "yes" : "no"}</td>
<td class="time">${escapeHtml(utcStamp(s.lastScheduleTime))}</td>
<td class="time">${escapeHtml(utcStamp(s.lastSuccessTime) || "never")}</td>
<td class="time">${escapeHtml(utcStamp(s.nextRunTime) || (s.suspended ? "suspended" : ""))}</td>
<td>${escapeHtml(s.retention ?? "keep all")}</td>
<td>${escapeHtml(s.pointInTime ?? "")}</td>
</tr>`;
  return `<h3>Schedules</h3>
<table class="schedules">
<thead><tr><th>Schedule</th><th>When</th><th>Suspended</th><th>Last scheduled (UTC)</th><th>Last success</th><th>Next run</th><th>Retention</th><th>Point in time</th></tr></thead>
<tbody>
${rows.map(tr).join("\n")}
</tbody>
</table>`;
}

const bytes = (n: number | undefined) => (n === undefined ? "" : formatBytes(n));

function backupsTable(rows: readonly BackupRow[]): string {
  const tr = (
    b: BackupRow,
  ) => `<tr class="backup ${b.phase === "Succeeded" ? "success" : b.phase === "Failed" ? "failure" : ""}">
<td>${escapeHtml(`${b.namespace}/${b.name}`)}</td>
<td class="result">${escapeHtml(b.phase)}${b.failure ? ` <span class="reason">${escapeHtml(b.failure.reason)}</span>` : ""}</td>
<td class="time">${escapeHtml(utcStamp(b.time))}</td>
<td class="num">${escapeHtml(bytes(b.dbSize))}</td>
<td class="num">${escapeHtml(bytes(b.storedSize))}</td>
<td class="num">${escapeHtml(b.revision ?? "")}</td>
<td class="key">${escapeHtml(b.location ?? "")}${b.key ? `<br>${escapeHtml(b.key)}` : ""}</td>
</tr>`;
  return `<table class="backups">
<thead><tr><th>Backup</th><th>Phase</th><th>Time (UTC)</th><th>DB size</th><th>Stored</th><th>Revision</th><th>Store and key</th></tr></thead>
<tbody>
${rows.map(tr).join("\n") || `<tr><td colspan="7">no backups yet</td></tr>`}
</tbody>
</table>`;
}

function failureItem(b: BackupRow): string {
  const f = b.failure ?? { reason: "", message: "" };
  return `<li><code>${escapeHtml(`${b.namespace}/${b.name}`)}</code> ${escapeHtml(utcStamp(b.time))}: <strong>${escapeHtml(f.reason)}</strong> <span class="error">${escapeHtml(f.message)}</span>${b.nextRetryTime ? ` (retry at ${escapeHtml(utcStamp(b.nextRetryTime))})` : ""}</li>`;
}
