import { type Command, Option } from "commander";
import { type CatalogEntry, isUsable, listBackups, readRetentions } from "../../catalog/catalog.ts";
import { type BackupFilter, filterBackups } from "../../catalog/filter.ts";
import { formatStamp } from "../../catalog/names.ts";
import { listRekeyLeftovers, newestRekeyPart, type RekeyLeftover } from "../../catalog/rekey-journal.ts";
import { parseTimeBound } from "../../catalog/time-bound.ts";
import { UsageError } from "../../errors.ts";
import { formatAge, formatBytes } from "../../render/units.ts";
import { NO_RETENTION, type Retention, retentionJson, retentionLabel } from "../../store/store.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";
import { renderTable } from "../table.ts";

type ListFlags = StoreFlags & {
  output: string;
  cluster?: string;
  since?: string;
  until?: string;
  log?: boolean;
};

function filterFromFlags(flags: ListFlags, now: Date): BackupFilter {
  const bound = (text: string | undefined, flag: string): Date | undefined => {
    if (text === undefined) return undefined;
    const time = parseTimeBound(text, now);
    if (!time) {
      throw new UsageError(
        `${flag} ${JSON.stringify(text)} is not a time`,
        "use RFC 3339 (2026-11-23T12:00:00Z), a date (2026-11-23) or a span ago (7d, 36h)",
      );
    }
    return time;
  };
  const since = bound(flags.since, "--since");
  const until = bound(flags.until, "--until");
  return {
    ...(flags.cluster !== undefined ? { cluster: flags.cluster } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

export function register(program: Command): void {
  const cmd = program.command("list").description("list the backups in a destination, newest first");
  addStoreOptions(cmd);
  cmd
    .addOption(
      new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .option("--cluster <name>", "only this cluster's backups")
    .option(
      "--since <time>",
      "only backups at or after this time: RFC 3339, a UTC date, or a span ago (7d, 36h)",
    )
    .option(
      "--until <time>",
      "only backups at or before this time: RFC 3339, a UTC date, or a span ago (7d, 36h)",
    )
    .option("--log", "list the point-in-time windows of the revision log (with -o json: only them)")
    .action(async (flags: ListFlags) => {
      const now = Date.now();
      const filter = filterFromFlags(flags, new Date(now));
      const store = storeFromFlags(flags);
      const windows = await import("../point-in-time-list.ts");
      if (flags.log && flags.output === "json") {
        const { readLogCatalog } = await import("../../point-in-time/catalog.ts");
        const logs = await readLogCatalog(store, flags.cluster ? { cluster: flags.cluster } : {});
        process.stdout.write(`${JSON.stringify(windows.logWindowsJson(logs), null, 2)}\n`);
        return;
      }
      // A bucket shared by a fleet: each cluster's backups together (clusters by name), newest first within.
      const entries = groupByCluster(filterBackups(await listBackups(store), filter));
      const locks = await readRetentions(store, entries);
      // A rekey's journal and copies beside a backup: a rekey running, or killed (rekey again, or prune, resolves it).
      const rekeys = await listRekeyLeftovers(store);
      if (flags.output === "json") {
        process.stdout.write(
          `${JSON.stringify(
            entries.map((e) => toJson(e, locks.get(e.key), e.temporary ? undefined : rekeys.get(e.key))),
            null,
            2,
          )}\n`,
        );
        return;
      }
      // The lock column only where something is locked or hidden, so a plain store's table stays as it was.
      const showLock = entries.some((e) => lockText(e, locks.get(e.key)) !== "-");
      const rekeyOf = (e: CatalogEntry) => (e.temporary ? undefined : rekeys.get(e.key));
      const showRekey = entries.some((e) => rekeyOf(e) !== undefined);
      if (entries.length === 0) {
        const filtered = Object.keys(filter).length > 0 ? " matching the filters" : "";
        process.stdout.write(`no backups${filtered} in ${store.location}\n`);
        return;
      }
      process.stdout.write(
        renderTable(
          [
            "NAME",
            "TIME (UTC)",
            "AGE",
            "CLUSTER",
            "REVISION",
            "DB SIZE",
            "STORED",
            "COMPRESSION",
            "ENCRYPTION",
            "MANIFEST",
            ...(showLock ? ["LOCK"] : []),
            ...(showRekey ? ["REKEY"] : []),
          ],
          entries.map((e) => [
            e.key,
            formatStamp(e.time),
            formatAge(now - e.time.getTime()),
            e.cluster,
            e.manifest?.etcd ? String(e.manifest.etcd.revision) : "-",
            e.manifest ? formatBytes(e.manifest.dbSize) : "-",
            e.object ? formatBytes(e.object.size) : "-",
            e.compression,
            e.encrypted ? "age" : "none",
            stateLabel(e),
            ...(showLock ? [lockText(e, locks.get(e.key))] : []),
            ...(showRekey ? [rekeyText(rekeyOf(e), now)] : []),
          ]),
        ),
      );
      process.stdout.write(await windows.renderLogWindows(store, flags.cluster));
    });
}

/** Entries of one cluster together, clusters in name order; the order within a cluster is kept (newest first). */
export function groupByCluster(entries: CatalogEntry[]): CatalogEntry[] {
  const clusters = [...new Set(entries.map((e) => e.cluster))].sort();
  return clusters.flatMap((c) => entries.filter((e) => e.cluster === c));
}

function stateLabel(e: CatalogEntry): string {
  switch (e.state) {
    case "complete":
      return "yes";
    case "unmanaged":
      return "no";
    case "incomplete":
      return "INCOMPLETE";
    case "invalid":
      return `INVALID: ${e.problem ?? ""}`;
  }
}

/** The lock column: mode and date, legal hold, and a note when a delete marker hides the object from plain listings. */
function lockText(e: CatalogEntry, retention: Retention | undefined): string {
  const label = retentionLabel(retention ?? NO_RETENTION);
  if (!e.object?.behindDeleteMarker) return label;
  return `${label === "-" ? "" : `${label}; `}behind a delete marker`;
}

/**
 * The rekey column: what a rekey left beside the backup and when it last wrote, `-` for none. Running or killed
 * cannot be told apart here; `list` reads such a backup whole either way (src/catalog/rekey-journal.ts).
 */
function rekeyText(leftover: RekeyLeftover | undefined, now: number): string {
  if (!leftover) return "-";
  const parts = [
    ...(leftover.journal ? ["journal"] : []),
    ...(leftover.staging.length > 0
      ? [`${leftover.staging.length} cop${leftover.staging.length === 1 ? "y" : "ies"}`]
      : []),
  ];
  return `in progress or interrupted (${parts.join(" + ")}, ${formatAge(now - newestRekeyPart(leftover).getTime())} ago)`;
}

function rekeyJson(leftover: RekeyLeftover) {
  return {
    journal: leftover.journal?.key ?? null,
    staging: leftover.staging.map((o) => o.key),
    lastWritten: newestRekeyPart(leftover).toISOString(),
  };
}

function toJson(e: CatalogEntry, retention: Retention | undefined, rekey: RekeyLeftover | undefined) {
  return {
    name: e.key,
    cluster: e.cluster,
    time: e.time.toISOString(),
    kind: e.kind,
    state: e.state,
    compression: e.compression,
    encrypted: e.encrypted,
    revision: e.manifest?.etcd?.revision ?? null,
    dbSize: e.manifest?.dbSize ?? null,
    storedSize: e.object?.size ?? null,
    hasManifest: e.manifestObject !== undefined,
    usable: isUsable(e),
    ...(e.problem ? { problem: e.problem } : {}),
    ...(retention ? { lock: retentionJson(retention) } : {}),
    ...(e.object?.behindDeleteMarker ? { behindDeleteMarker: true } : {}),
    ...(rekey ? { rekey: rekeyJson(rekey) } : {}),
    ...(e.manifest ? { manifest: e.manifest } : {}),
  };
}
