import { type Command, Option } from "commander";
import type { CatalogEntry } from "../../catalog/catalog.ts";
import { formatStamp } from "../../catalog/names.ts";
import { DEFAULT_INCOMPLETE_GRACE_MS, type PruneReport, pruneBackups } from "../../catalog/prune.ts";
import { type RekeyCleanup, rekeyKeys } from "../../catalog/prune-rekeys.ts";
import {
  CALENDAR_RULES,
  hasKeepRule,
  type KeepReason,
  type RetentionPolicy,
} from "../../catalog/retention.ts";
import { parseSpan } from "../../duration.ts";
import { UsageError } from "../../errors.ts";
import { type LogPruneResult, pruneLog } from "../../point-in-time/prune-log.ts";
import { formatAge, formatBytes } from "../../render/units.ts";
import { removeLeftovers } from "../leftovers.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";
import { renderTable } from "../table.ts";

/** The values commander collects for the options `addKeepOptions` adds. */
export interface KeepFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
}

/** Adds `--keep-last`, `--keep-hourly` ... `--keep-yearly` and `--keep-within` (each also from ETCD_BACKUP_KEEP_*). */
export function addKeepOptions(cmd: Command): Command {
  const count = (flag: string, what: string) =>
    new Option(`--keep-${flag} <n>`, what).env(`ETCD_BACKUP_KEEP_${flag.toUpperCase()}`);
  return cmd
    .addOption(count("last", "keep the N newest backups"))
    .addOption(count("hourly", "keep the newest backup of each of the last N hours that have one (UTC)"))
    .addOption(count("daily", "keep the newest backup of each of the last N days that have one (UTC)"))
    .addOption(count("weekly", "keep the newest backup of each of the last N ISO weeks that have one"))
    .addOption(count("monthly", "keep the newest backup of each of the last N months that have one (UTC)"))
    .addOption(count("yearly", "keep the newest backup of each of the last N years that have one (UTC)"))
    .addOption(
      new Option(
        "--keep-within <span>",
        "keep every backup taken within this span (7d, 36h, 2w) before the newest one",
      ).env("ETCD_BACKUP_KEEP_WITHIN"),
    );
}

/**
 * Turns the keep flags into a policy. Throws `UsageError` for a count that is not a whole number of at least 1,
 * a span without units, or no rule at all (prune never guesses what to keep).
 */
export function policyFromKeepFlags(flags: KeepFlags): RetentionPolicy {
  const policy: RetentionPolicy = {};
  const count = (value: string | undefined, flag: string): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new UsageError(`--keep-${flag} ${JSON.stringify(value)} is not a whole number of at least 1`);
    }
    return n;
  };
  const last = count(flags.keepLast, "last");
  if (last !== undefined) policy.last = last;
  for (const rule of CALENDAR_RULES) {
    const key = `keep${rule[0]!.toUpperCase()}${rule.slice(1)}` as keyof KeepFlags;
    const n = count(flags[key], rule);
    if (n !== undefined) policy[rule] = n;
  }
  if (flags.keepWithin !== undefined) {
    const span = parseSpan(flags.keepWithin);
    if (span === null) {
      throw new UsageError(
        `--keep-within ${JSON.stringify(flags.keepWithin)} is not a span of time`,
        "use units: 7d, 36h, 2w, 1d12h",
      );
    }
    policy.withinMs = span;
  }
  if (!hasKeepRule(policy)) {
    throw new UsageError(
      "no keep rule given: prune will not guess what to keep",
      "pass at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within",
    );
  }
  return policy;
}

type PruneFlags = StoreFlags &
  KeepFlags & {
    cluster?: string;
    dryRun?: boolean;
    incompleteGrace: string;
    output: string;
    keepLogWithin?: string;
  };

export function register(program: Command): void {
  const cmd = program
    .command("prune")
    .description(
      "delete the backups no keep rule keeps (per cluster; the newest is always kept) and old incomplete leftovers",
    );
  addStoreOptions(cmd);
  addKeepOptions(cmd);
  cmd
    .option("--cluster <name>", "only this cluster's backups")
    .option(
      "--incomplete-grace <span>",
      "remove incomplete leftovers only once they are this old (an upload may be running)",
      "24h",
    )
    .addOption(
      new Option(
        "--keep-log-within <span>",
        "revision log: keep every revision restorable only this far back (7d); older points are the kept backups",
      ).env("ETCD_BACKUP_KEEP_LOG_WITHIN"),
    )
    .option("--dry-run", "print what would be kept and deleted, delete nothing")
    .addOption(
      new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .action(async (flags: PruneFlags) => {
      const policy = policyFromKeepFlags(flags);
      const graceMs = parseSpan(flags.incompleteGrace);
      if (graceMs === null) {
        throw new UsageError(
          `--incomplete-grace ${JSON.stringify(flags.incompleteGrace)} is not a span of time`,
          `use units, e.g. ${DEFAULT_INCOMPLETE_GRACE_MS / 3_600_000}h`,
        );
      }
      const logWithinMs = flags.keepLogWithin !== undefined ? parseSpan(flags.keepLogWithin) : undefined;
      if (logWithinMs === null) {
        throw new UsageError(
          `--keep-log-within ${JSON.stringify(flags.keepLogWithin)} is not a span of time`,
          "use units: 7d, 36h, 2w",
        );
      }
      const store = storeFromFlags(flags);
      // Work folders of killed restores and test restores (decrypted data) go too; see docs/SECURITY.md.
      if (!flags.dryRun) await removeLeftovers();
      const { signal, dispose } = abortOnSignals();
      let report: PruneReport;
      let log: LogPruneResult;
      try {
        report = await pruneBackups(store, policy, {
          dryRun: flags.dryRun ?? false,
          graceMs,
          signal,
          ...(flags.cluster !== undefined ? { cluster: flags.cluster } : {}),
        });
        signal.throwIfAborted();
        // Then the revision log: segments that no restorable point needs once these backups are gone. A dry
        // run counts the backups it would delete as gone, so it shows what the real run would do.
        log = await pruneLog(store, {
          dryRun: report.dryRun,
          now: report.now,
          ...(logWithinMs !== undefined ? { withinMs: logWithinMs } : {}),
          goneBackups: report.dryRun
            ? report.backups.filter((b) => b.action === "delete").map((b) => b.entry.key)
            : [],
          ...(flags.cluster !== undefined ? { cluster: flags.cluster } : {}),
        });
      } finally {
        dispose();
      }
      process.stdout.write(
        flags.output === "json"
          ? `${JSON.stringify({ ...toJson(report), log: logJson(log) }, null, 2)}\n`
          : toText(report) + logText(log, report.dryRun),
      );
      const failures = [...report.failures, ...log.failed];
      if (failures.length > 0) {
        throw new Error(
          `${failures.length} deletion${failures.length === 1 ? "" : "s"} failed in ${store.location}: ` +
            failures.map((f) => `${f.key}: ${f.error}`).join("; "),
        );
      }
    });
}

function reasonText(r: KeepReason): string {
  if (r.rule === "locked") return `kept: ${r.hold ?? "locked"}`;
  if (r.rule === "rekey") return "kept: rekey in progress (see its REKEY row)";
  return r.period ? `${r.rule} ${r.period}` : r.rule;
}

function toText(report: PruneReport): string {
  const now = report.now.getTime();
  const verb = (action: "keep" | "delete", result?: "deleted" | "failed") =>
    action === "keep" ? "keep" : report.dryRun ? "would delete" : result === "failed" ? "FAILED" : "deleted";
  const rows = [
    ...report.backups.map((b) => [
      verb(b.action, b.result),
      b.entry.key,
      formatStamp(b.entry.time),
      formatAge(now - b.entry.time.getTime()),
      b.entry.cluster,
      b.entry.state === "complete" ? "yes" : "no",
      b.reasons.map(reasonText).join(", "),
    ]),
    ...report.invalid.map((e) => [
      "keep",
      e.key,
      formatStamp(e.time),
      formatAge(now - e.time.getTime()),
      e.cluster,
      "INVALID",
      `invalid, left for a person to check: ${e.problem ?? ""}`,
    ]),
    ...report.leftovers.map((l) => [
      l.action === "keep" ? "keep" : verb("delete", l.result),
      l.entry.state === "incomplete" ? l.entry.key : l.keys.join(", "),
      formatStamp(l.entry.time),
      formatAge(l.ageMs),
      l.entry.cluster,
      l.entry.state === "incomplete" ? "INCOMPLETE" : "yes",
      l.hold
        ? `kept: ${l.hold} (leftover: ${l.entry.problem ?? "stale marker"})`
        : l.action === "keep"
          ? `leftover younger than the grace period (${l.entry.problem ?? "stale marker"})`
          : `leftover: ${l.entry.problem ?? "stale marker beside a complete backup"}`,
    ]),
    ...report.uploads.map((u) => [
      u.action === "keep"
        ? "keep"
        : report.dryRun
          ? "would abort"
          : u.result === "failed"
            ? "FAILED"
            : "aborted",
      u.key,
      formatStamp(u.name.time),
      formatAge(u.ageMs),
      u.name.cluster,
      "UPLOAD",
      u.action === "keep"
        ? "multipart upload younger than the grace period (may still be running)"
        : "multipart upload never completed (a killed or failed save or rekey)",
    ]),
    ...report.rekeys.map((c) => [
      rekeyVerb(c, report.dryRun),
      c.key,
      c.time ? formatStamp(c.time) : "-",
      formatAge(c.ageMs),
      c.cluster,
      c.kind === "backup" ? "REKEY" : "REKEY (LOG)",
      rekeyWhy(c),
    ]),
  ];
  const deleting = report.backups.filter((b) => b.action === "delete").length;
  const cleaning = report.leftovers.filter((l) => l.action === "delete").length;
  const aborting = report.uploads.filter((u) => u.action === "abort").length;
  const uploads = (verb: string) => (aborting > 0 ? `, ${verb} ${aborting} multipart upload(s)` : "");
  const resolving = report.rekeys.filter(
    (c) => c.action === "resolve" && c.resolution !== "with backup",
  ).length;
  const inProgress = report.rekeys.filter((c) => c.resolution === "in progress").length;
  const rekeys = (verb: string) =>
    (resolving > 0 ? `, ${verb} ${resolving} interrupted rekey(s)` : "") +
    (inProgress > 0 ? `, left ${inProgress} rekey(s) in progress alone` : "");
  const summary = report.dryRun
    ? `dry run: would delete ${deleting} backup(s) and ${cleaning} leftover(s)${uploads("abort")}${rekeys("resolve")}, ${formatBytes(report.freedBytes)}; nothing was deleted`
    : `deleted ${deleting} backup(s) and ${cleaning} leftover(s)${uploads("aborted")}${rekeys("resolved")}, ${formatBytes(report.freedBytes)} freed` +
      (report.failures.length > 0 ? `; ${report.failures.length} deletion(s) failed` : "");
  const unchecked = report.uploadsUnchecked
    ? `note: incomplete multipart uploads were not checked: ${report.uploadsUnchecked}; a lifecycle rule with AbortIncompleteMultipartUpload removes them\n`
    : "";
  const table =
    rows.length > 0
      ? renderTable(["ACTION", "NAME", "TIME (UTC)", "AGE", "CLUSTER", "MANIFEST", "WHY"], rows)
      : "no backups\n";
  return `${table}${summary}\n${unchecked}`;
}

/** What prune does (or did) with a rekey's journal and copies. */
function rekeyVerb(c: RekeyCleanup, dryRun: boolean): string {
  if (c.action === "keep") return "keep";
  if (c.result === "failed") return "FAILED";
  const planned: Record<string, string> = {
    finish: "finish rekey",
    undo: "undo rekey",
    clean: "delete",
    "with backup": "delete",
    orphaned: "delete",
  };
  if (dryRun) return `would ${planned[c.resolution] ?? "keep"}`;
  switch (c.result) {
    case "finished":
      return "rekey finished";
    case "undone":
      return "rekey undone";
    case "left":
      return "left (changed)";
    default:
      return "deleted";
  }
}

function rekeyWhy(c: RekeyCleanup): string {
  const parts = [
    ...(c.journal ? [`journal ${c.journal.key}`] : []),
    ...(c.staging.length > 0
      ? [
          `${c.staging.length} rewritten cop${c.staging.length === 1 ? "y" : "ies"} (${c.staging.map((o) => o.key).join(", ")})`,
        ]
      : []),
  ].join(", ");
  if (c.hold) return `kept: ${c.hold} (rekey leftovers: ${parts})`;
  switch (c.resolution) {
    case "in progress":
      return `rekey in progress: ${parts}; left alone while younger than the grace period`;
    case "finish":
      return `interrupted rekey, the object already carries the new header: its new manifest is written, then ${parts} removed (new recipients)`;
    case "undo":
      return `interrupted rekey, the object still carries the old header: ${parts} removed (the old recipients stay; run rekey again)`;
    case "clean":
      return `rekey killed before its copy was verified: ${parts} removed (the backup is unchanged)`;
    case "with backup":
      return `rekey leftovers of a backup deleted here: ${parts}`;
    case "orphaned":
      return `rekey leftovers of a backup that is gone: ${parts}`;
    case "check":
      return `left for a person to check: ${c.problem ?? ""}`;
  }
}

function rekeyJson(c: RekeyCleanup) {
  return {
    name: c.key,
    kind: c.kind,
    cluster: c.cluster,
    time: c.time?.toISOString() ?? null,
    action: c.action,
    resolution: c.resolution,
    keys: rekeyKeys(c),
    journal: c.journal?.key ?? null,
    staging: c.staging.map((o) => o.key),
    ageSeconds: Math.round(c.ageMs / 1000),
    ...(c.problem ? { problem: c.problem } : {}),
    ...(c.hold ? { hold: c.hold } : {}),
    ...(c.result ? { result: c.result } : {}),
  };
}

function entryJson(e: CatalogEntry) {
  return { name: e.key, cluster: e.cluster, time: e.time.toISOString(), kind: e.kind, state: e.state };
}

function toJson(report: PruneReport) {
  return {
    dryRun: report.dryRun,
    now: report.now.toISOString(),
    backups: report.backups.map((b) => ({
      ...entryJson(b.entry),
      action: b.action,
      reasons: b.reasons,
      ...(b.result ? { result: b.result } : {}),
    })),
    invalid: report.invalid.map((e) => ({ ...entryJson(e), problem: e.problem ?? null })),
    leftovers: report.leftovers.map((l) => ({
      ...entryJson(l.entry),
      action: l.action,
      keys: l.keys,
      ageSeconds: Math.round(l.ageMs / 1000),
      problem: l.entry.problem ?? "stale marker beside a complete backup",
      ...(l.hold ? { hold: l.hold } : {}),
      ...(l.result ? { result: l.result } : {}),
    })),
    uploads: report.uploads.map((u) => ({
      key: u.key,
      uploadId: u.uploadId,
      cluster: u.name.cluster,
      initiated: u.initiated.toISOString(),
      ageSeconds: Math.round(u.ageMs / 1000),
      action: u.action,
      ...(u.result ? { result: u.result } : {}),
    })),
    rekeys: report.rekeys.map(rekeyJson),
    ...(report.uploadsUnchecked ? { uploadsUnchecked: report.uploadsUnchecked } : {}),
    failures: report.failures,
    freedBytes: report.freedBytes,
  };
}

/** The revision log's part of the report: one row per chain (segments can number thousands). */
function logText(log: LogPruneResult, dryRun: boolean): string {
  if (log.chains.length === 0) return "";
  const held =
    log.held.length > 0
      ? `revision log: kept ${log.held.length} object(s) retention would remove, held by the store:\n${log.held
          .map((h) => `  ${h.key}: ${h.reason}`)
          .join("\n")}\n`
      : "";
  const rows = log.chains.map((c) => [
    c.action === "keep" ? "keep" : dryRun ? `would ${c.action}` : c.action === "cut" ? "cut" : "removed",
    c.cluster,
    String(c.base),
    c.kept ? `${c.kept.from}-${c.kept.to}` : "-",
    String(c.keptSegments),
    String(c.removedSegments),
    c.reason,
  ]);
  const segments = log.chains.reduce((n, c) => n + c.removedSegments, 0);
  const summary = dryRun
    ? `revision log: would remove ${segments} segment(s) (${log.removed.length} object(s) with manifests and records), keep ${log.keptSegments} segment(s); nothing was deleted`
    : `revision log: removed ${segments} segment(s) (${log.removed.length - log.failed.length} object(s) with manifests and records), kept ${log.keptSegments} segment(s)` +
      (log.failed.length > 0 ? `; ${log.failed.length} deletion(s) failed` : "");
  return `\nrevision log (point-in-time recovery):\n${renderTable(
    ["ACTION", "CLUSTER", "CHAIN", "RESTORABLE REVISIONS", "KEPT", "REMOVED", "WHY"],
    rows,
  )}${summary}\n${held}`;
}

function logJson(log: LogPruneResult) {
  return {
    chains: log.chains.map((c) => ({
      cluster: c.cluster,
      chain: c.base,
      action: c.action,
      keptRevisions: c.kept ? { from: c.kept.from, to: c.kept.to } : null,
      keptSegments: c.keptSegments,
      removedSegments: c.removedSegments,
      earliestBackupRevision: c.earliestBackup ?? null,
      reason: c.reason,
    })),
    removed: log.removed,
    held: log.held,
    keptSegments: log.keptSegments,
    failures: log.failed,
  };
}
