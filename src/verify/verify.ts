import { createHash } from "node:crypto";
import { pipeline, type Readable, Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline as pipelinePromise } from "node:stream/promises";
import type { CatalogEntry } from "../catalog/catalog.ts";
import type { Manifest } from "../catalog/manifest.ts";
import { describeError } from "../errors.ts";
import { type MaterializedSnapshot, materializeBackup, snapshotSha256 } from "../restore/materialize.ts";
import {
  BoltDb,
  checkSnapshot,
  checkSnapshotFile,
  type SnapshotStatus,
  snapshotStatus,
} from "../snapshot/index.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import { withOverrides } from "../store/delegate.ts";
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
 *
 * With a manifest, the stored object itself is checked against it too, each as a named check: its size (as
 * listed and as read) against the manifest's stored size, its sha256 against the one the save recorded, the
 * recorded sizes against each other and against what was decoded, and, where the store keeps it (S3 metadata),
 * the run that wrote the object against the run that wrote the manifest. These are reported even when the
 * object cannot be decoded, since that is what an object and a manifest from different saves look like.
 */
export async function verifyBackup(
  store: Store,
  entry: CatalogEntry,
  options: { decrypt?: DecryptionFactory; signal?: AbortSignal } = {},
): Promise<VerifyReport> {
  const read = new StoredBytes();
  const counted = withOverrides(store, { get: async (key, o) => read.tap(await store.get(key, o)) });
  let snapshot: MaterializedSnapshot;
  try {
    snapshot = await materializeBackup(counted, entry, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const checks: VerifyCheck[] = [
      { name: "read", ok: false, severity: "error", detail: describeError(err) },
    ];
    if (entry.manifest) {
      // Decoding stopped early; hash the whole object as stored to say whether it is the one the manifest means.
      const whole = new StoredBytes();
      await whole.drain(await store.get(entry.key, options)).catch(() => {});
      checks.push(...(await objectChecks(store, entry, entry.manifest, whole.done ? whole : undefined)));
    }
    return { ok: false, checks };
  }
  try {
    const report = await verifySnapshot(snapshot, entry.manifest);
    const m = entry.manifest;
    if (m) {
      report.checks.push(...(await objectChecks(store, entry, m, read.done ? read : undefined)));
      report.checks.push(
        sizeCheck("manifest plain size", snapshot.size, m.sizes.plain, "decoded"),
        ...(entry.encrypted
          ? []
          : [sizeCheck("manifest compressed size", read.bytes, m.sizes.compressed, "stored, unencrypted")]),
      );
      report.ok = report.checks.every((c) => c.ok || c.severity === "warning");
    }
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

/** The checks of the stored object against its manifest; `read` is the whole object as read, when it was. */
async function objectChecks(
  store: Store,
  entry: CatalogEntry,
  m: Manifest,
  read: StoredBytes | undefined,
): Promise<VerifyCheck[]> {
  const checks: VerifyCheck[] = [];
  const listed = entry.object?.size;
  if (listed !== undefined) checks.push(sizeCheck("manifest stored size", listed, m.sizes.stored, "listed"));
  if (read && read.bytes !== listed)
    checks.push(sizeCheck("object read size", read.bytes, m.sizes.stored, "read"));
  if (m.object) {
    checks.push(sizeCheck("manifest object size", m.object.size, m.sizes.stored, "in the manifest's object"));
    if (read) {
      const sha256 = read.sha256();
      checks.push({
        name: "object sha256",
        ok: sha256 === m.object.sha256,
        severity: "error",
        detail:
          sha256 === m.object.sha256
            ? "the stored object is the one the manifest describes"
            : `stored object has ${sha256}, manifest says ${m.object.sha256} (not from the same save, or changed)`,
      });
    }
  } else {
    checks.push({
      name: "object sha256",
      ok: false,
      severity: "warning",
      detail: "the manifest predates recorded object checksums; only sizes were compared",
    });
  }
  if (m.run) {
    const owner = (await store.stat(entry.key).catch(() => null))?.owner;
    if (owner !== undefined) {
      checks.push({
        name: "object run",
        ok: owner === m.run,
        severity: "error",
        detail:
          owner === m.run
            ? `written by run ${m.run}`
            : `object written by run ${owner}, manifest by run ${m.run}`,
      });
    }
  }
  return checks;
}

function sizeCheck(name: string, actual: number, recorded: number, what: string): VerifyCheck {
  return {
    name,
    ok: actual === recorded,
    severity: "error",
    detail: `${actual} bytes ${what}${actual === recorded ? "" : `, manifest says ${recorded}`}`,
  };
}

/** Counts and hashes a stored object's bytes as they are read. */
class StoredBytes {
  bytes = 0;
  done = false;
  private readonly hash = createHash("sha256");

  /** The stream, with its bytes counted; `done` once it has ended. */
  tap(source: Readable): Readable {
    const self = this;
    const counter = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        self.bytes += chunk.length;
        self.hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb: TransformCallback) {
        self.done = true;
        cb();
      },
    });
    return pipeline(source, counter, () => {}) as unknown as Readable;
  }

  async drain(source: Readable): Promise<void> {
    await pipelinePromise(
      this.tap(source),
      new Writable({
        write(_chunk, _enc, cb) {
          cb();
        },
      }),
    );
  }

  sha256(): string {
    return this.hash.digest("hex");
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
