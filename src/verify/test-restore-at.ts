/**
 * `verify --test-restore --at TIME | --revision N`: proves the revision log restores a point. The state at
 * the point is rebuilt with the point-in-time restore (full backup + replay, restore-to-point.ts) into a
 * private work folder, then that snapshot goes through the same test restore as a stored backup
 * (restore/test-restore.ts: a data dir, a real etcd on loopback with throwaway TLS, its revision and key
 * count read back), and the revision etcd serves must be the point's. Everything is removed afterwards.
 */
import { join } from "node:path";
import { formatStamp, parseBackupKey } from "../catalog/names.ts";
import { type RecoveryPoint, restoreToPoint } from "../point-in-time/restore-to-point.ts";
import { type TestRestoreReport, testRestore } from "../restore/test-restore.ts";
import { createWorkFolder } from "../restore/work-folder.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import { LocalStore } from "../store/local.ts";
import type { Store } from "../store/store.ts";

export interface PointTestRestoreReport {
  cluster: string;
  /** The revision the point resolved to (the state the log rebuilt). */
  revision: number;
  /** The full backup the replay started from. */
  base: { key: string; revision: number };
  revisionsReplayed: number;
  eventsReplayed: number;
  replaySeconds: number;
  /** The restored etcd: served revision, key count, start time, problems. */
  etcd: TestRestoreReport;
  /** The replay succeeded, etcd started on the result and serves exactly the point's revision. */
  matches: boolean;
}

export async function testRestoreAtPoint(options: {
  store: Store;
  cluster?: string;
  point: RecoveryPoint;
  decrypt?: DecryptionFactory;
  /** Where the replay's private etcd works (tmpfs is faster); the private work folder when absent. */
  replayDir?: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
}): Promise<PointTestRestoreReport> {
  const work = await createWorkFolder("test-restore");
  try {
    // A name the catalog parses, so the replayed snapshot is a one-object store for the test restore.
    const name = `point-${formatStamp(new Date())}.snap`;
    const result = await restoreToPoint({
      store: options.store,
      ...(options.cluster ? { cluster: options.cluster } : {}),
      point: options.point,
      out: join(work.path, name),
      ...(options.replayDir ? { workDir: options.replayDir } : {}),
      ...(options.decrypt ? { decrypt: options.decrypt } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onLine ? { onLine: options.onLine } : {}),
    });
    const local = new LocalStore(work.path);
    const parsed = parseBackupKey(name);
    const object = await local.stat(name);
    if (!parsed || !object) throw new Error("the replayed snapshot is missing from its work folder");
    const etcd = await testRestore({
      store: local,
      entry: { ...parsed, state: "unmanaged", object },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (etcd.revision !== 0 && etcd.revision !== result.revision) {
      etcd.problems.push(
        `restored etcd serves revision ${etcd.revision}, the point is revision ${result.revision}`,
      );
    }
    return {
      cluster: result.cluster,
      revision: result.revision,
      base: result.base,
      revisionsReplayed: result.revisionsReplayed,
      eventsReplayed: result.eventsReplayed,
      replaySeconds: result.replaySeconds,
      etcd,
      matches: etcd.matches && etcd.revision === result.revision,
    };
  } finally {
    await work.remove();
  }
}

export function renderPointTestRestore(r: PointTestRestoreReport): string {
  const head = `point-in-time test restore of cluster ${r.cluster} at revision ${r.revision} (${r.base.key} + ${r.revisionsReplayed} revisions, ${r.eventsReplayed} events replayed in ${r.replaySeconds.toFixed(1)}s)`;
  if (r.matches) {
    return `${head}\ntest restore passed: etcd started in ${(r.etcd.startedInMs / 1000).toFixed(1)}s and serves revision ${r.etcd.revision} with ${r.etcd.keys} keys\n`;
  }
  return `${head}\ntest restore FAILED:\n${r.etcd.problems.map((p) => `  - ${p}\n`).join("")}`;
}
