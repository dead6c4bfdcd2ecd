import type { CatalogEntry } from "../catalog/catalog.ts";
import type { Manifest } from "../catalog/manifest.ts";
import { describeError } from "../errors.ts";
import { type MaterializedSnapshot, materializeBackup, snapshotSha256 } from "../restore/materialize.ts";
import type { DecryptionFactory } from "../restore/plain-stream.ts";
import {
  BoltDb,
  checkSnapshot,
  checkSnapshotFile,
  type SnapshotStatus,
  snapshotStatus,
} from "../snapshot/index.ts";
import type { Store } from "../store/store.ts";

/** One named check of `verify`; `ok: false` with severity "warning" does not fail the verification. */
export interface VerifyCheck {
  name: string;
  ok: boolean;
  severity: "error" | "warning";
  detail: string;
}

export interface VerifyReport {
  /** True when no check failed with severity "error". */
  ok: boolean;
  checks: VerifyCheck[];
  /** The snapshot's status, when it could be read. */
  status?: SnapshotStatus;
}

/**
 * Verifies a plain snapshot: etcd's sha256 trailer, the manifest's sha256, database size and etcd figures
 * (when a manifest is given and records them), and the bbolt structure (every page reachable once or free,
 * keys sorted, nothing out of range). Every failure is named; none stops the others.
 */
export async function verifySnapshot(
  snapshot: MaterializedSnapshot,
  manifest?: Manifest,
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const add = (name: string, ok: boolean, detail: string, severity: "error" | "warning" = "error") =>
    checks.push({ name, ok, severity, detail });

  // A snapshot in a file is checked page by page: memory stays flat whatever its size.
  const findings = snapshot.buffer ? checkSnapshot(snapshot.buffer) : await checkSnapshotFile(snapshot.path!);
  const trailerFindings = findings.filter((f) => /trailer/.test(f.message));
  const structural = findings.filter((f) => !/trailer/.test(f.message));
  if (trailerFindings.length === 0) add("sha256 trailer", true, "matches the database");
  for (const f of trailerFindings) add("sha256 trailer", false, f.message, f.severity);

  if (manifest) {
    // Verify is the one reader that needs the hash; a plain file read in place is hashed here.
    const sha256 = await snapshotSha256(snapshot);
    add(
      "manifest sha256",
      sha256 === manifest.sha256,
      sha256 === manifest.sha256 ? "matches" : `snapshot has ${sha256}, manifest says ${manifest.sha256}`,
    );
    const dbSize = snapshot.size - 32;
    add(
      "manifest db size",
      dbSize === manifest.dbSize,
      `${dbSize} bytes${dbSize === manifest.dbSize ? "" : `, manifest says ${manifest.dbSize}`}`,
    );
  }

  const errors = structural.filter((f) => f.severity === "error");
  add(
    "bbolt structure",
    errors.length === 0,
    errors.length === 0
      ? `sound (${structural.length} warnings)`
      : `${errors.length} problems: ${errors
          .slice(0, 5)
          .map((f) => f.message)
          .join("; ")}`,
  );
  for (const w of structural.filter((f) => f.severity === "warning"))
    add("bbolt structure", false, w.message, "warning");

  let status: SnapshotStatus | undefined;
  try {
    const db = snapshot.buffer ? new BoltDb(snapshot.buffer) : BoltDb.openFile(snapshot.path!);
    try {
      status = snapshotStatus(db);
    } finally {
      db.close();
    }
  } catch (err) {
    add("status", false, `cannot read the database: ${describeError(err)}`);
  }
  if (status && manifest?.etcd) {
    const e = manifest.etcd;
    add(
      "manifest revision",
      status.revision === e.revision,
      `snapshot ${status.revision}, manifest ${e.revision}`,
    );
    if (e.hash !== undefined)
      add("manifest hash", status.hash === e.hash, `snapshot ${status.hash}, manifest ${e.hash}`);
    if (e.totalKey !== undefined)
      add(
        "manifest total keys",
        status.totalKey === e.totalKey,
        `snapshot ${status.totalKey}, manifest ${e.totalKey}`,
      );
  }
  return { ok: checks.every((c) => c.ok || c.severity === "warning"), checks, ...(status ? { status } : {}) };
}

/**
 * Fetches, decrypts and decompresses a stored backup, then verifies it. A backup that cannot even be read
 * (wrong key, tampered age payload, bad zstd) yields a report with that failure rather than a rejection.
 */
export async function verifyBackup(
  store: Store,
  entry: CatalogEntry,
  options: { decrypt?: DecryptionFactory; signal?: AbortSignal } = {},
): Promise<VerifyReport> {
  let snapshot: MaterializedSnapshot;
  try {
    snapshot = await materializeBackup(store, entry, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return {
      ok: false,
      checks: [{ name: "read", ok: false, severity: "error", detail: describeError(err) }],
    };
  }
  try {
    const report = await verifySnapshot(snapshot, entry.manifest);
    report.checks.unshift({
      name: "read",
      ok: true,
      severity: "error",
      detail: `fetched${entry.encrypted ? ", decrypted" : ""}${entry.compression === "zstd" ? ", decompressed" : ""}`,
    });
    return report;
  } finally {
    await snapshot.dispose();
  }
}

/** The report as text: one line per check, then the verdict. */
export function renderVerifyReport(label: string, report: VerifyReport): string {
  const lines = report.checks.map(
    (c) => `${c.ok ? "ok  " : c.severity === "warning" ? "warn" : "FAIL"}  ${c.name}: ${c.detail}`,
  );
  lines.push(report.ok ? `${label}: verified` : `${label}: verification FAILED`);
  return `${lines.join("\n")}\n`;
}
