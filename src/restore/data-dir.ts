import { chmod, mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { TrailerResult } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { crashPoint } from "./crash-point.ts";
import { findRestoreTool, type RestoreTool, runTool, toolEnv, toolErrorLine } from "./etcd-tools.ts";
import { restoreToFile } from "./to-file.ts";
import { createWorkFolder } from "./work-folder.ts";

/**
 * How far the restored revision is pushed forward, as etcd's disaster recovery guide suggests: a week of
 * writes at 1500 per second fits, so no client ever sees a revision it has seen before.
 */
export const DEFAULT_REVISION_BUMP = 1_000_000_000;

/** etcdutl's member flags for `snapshot restore`; unset ones keep the tool's defaults. */
export interface MemberSettings {
  /** `--name`: this member's name (default "default"). */
  name?: string;
  /** `--initial-cluster`: every member as name=peerURL, the same on all members. */
  initialCluster?: string;
  /** `--initial-cluster-token`: the same on all members, different from the old cluster's. */
  initialClusterToken?: string;
  /** `--initial-advertise-peer-urls`: this member's peer URLs. */
  initialAdvertisePeerUrls?: string;
  /** `--wal-dir`: a separate WAL directory (must be empty or absent). */
  walDir?: string;
  /** `--skip-hash-check`: only for a db copied out of a data dir (no sha256 trailer). */
  skipHashCheck?: boolean;
}

export interface RestoreSnapshotFileOptions {
  /** A plain snapshot file (database and sha256 trailer). */
  snapshotFile: string;
  dataDir: string;
  member?: MemberSettings;
  /** Revision bump with `--mark-compacted`; 0 turns both off. Default `DEFAULT_REVISION_BUMP`. */
  revisionBump?: number;
  /** The tool to drive; found with `findRestoreTool` when absent. */
  tool?: RestoreTool;
  signal?: AbortSignal;
  /** Receives warning lines (no bump possible with this tool). */
  onWarning?: (line: string) => void;
}

export interface DataDirResult {
  dataDir: string;
  walDir?: string;
  tool: RestoreTool;
  /** The bump applied (with --mark-compacted), 0 when none was. */
  revisionBump: number;
  warnings: string[];
}

export interface RestoreToDataDirOptions extends Omit<RestoreSnapshotFileOptions, "snapshotFile"> {
  store: Store;
  entry: CatalogEntry;
  decrypt?: DecryptionFactory;
  onProgress?: (storedBytes: number) => void;
}

/**
 * Refuses a data (or WAL) directory that exists and is not an empty directory: a restore never mixes with
 * or replaces a member's data. Resolves to whether the directory exists (empty).
 */
export async function assertEmptyTarget(dir: string, flag: string): Promise<boolean> {
  const info = await stat(dir).catch(() => null);
  if (!info) return false;
  if (!info.isDirectory())
    throw new Hinted(`${flag} ${dir} exists and is not a directory`, `choose another ${flag}`);
  if ((await readdir(dir)).length > 0) {
    throw new Hinted(
      `${flag} ${dir} is not empty; refusing to restore over a member's data`,
      `move it aside first (mv ${dir} ${dir}.old) or choose another ${flag}`,
    );
  }
  return true;
}

/**
 * Fetches, decrypts, decompresses and checks a backup into a private temporary file (0600, in a 0700 work
 * folder beside the data dir, always removed, and removed by the next run's sweep if this one is killed),
 * then restores it into `dataDir` with `etcdutl snapshot restore` (or `etcdctl` 3.4) and the member settings.
 * A snapshot without a trailer (the database alone) is restored with `--skip-hash-check`. The data dir must
 * be absent or empty; it appears complete or not at all (the tool writes into the private directory, which
 * is then renamed).
 * With a tool that supports it, the revision is bumped by `revisionBump` and marked compacted; with one
 * that does not, a warning explains what that means for Kubernetes and the restore goes on.
 */
export async function restoreToDataDir(
  options: RestoreToDataDirOptions,
): Promise<DataDirResult & { snapshot: TrailerResult }> {
  const dataDir = resolve(options.dataDir);
  await assertEmptyTarget(dataDir, "--data-dir");
  if (options.member?.walDir) await assertEmptyTarget(resolve(options.member.walDir), "--wal-dir");
  const tool = options.tool ?? (await findRestoreTool(options.signal ? { signal: options.signal } : {}));
  await mkdir(dirname(dataDir), { recursive: true });
  const work = await createWorkFolder("restore", dirname(dataDir));
  try {
    const snapshot = await restoreToFile({
      store: options.store,
      entry: options.entry,
      out: join(work.path, "snapshot.db"),
      ...(options.decrypt ? { decrypt: options.decrypt } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    crashPoint("data-dir-snapshot-written");
    const result = await restoreInto(work.path, {
      ...options,
      snapshotFile: snapshot.path,
      dataDir,
      tool,
      // A database copied out of a data dir has no trailer for etcd to check.
      member: { ...options.member, skipHashCheck: options.member?.skipHashCheck || !snapshot.hasTrailer },
    });
    return { ...result, snapshot };
  } finally {
    await work.remove();
  }
}

/**
 * Restores a plain snapshot file into `dataDir` (absent or empty) with the tool and member settings, through
 * a private directory beside it. The same rules as `restoreToDataDir`, for a snapshot already on disk.
 */
export async function restoreSnapshotFile(options: RestoreSnapshotFileOptions): Promise<DataDirResult> {
  const dataDir = resolve(options.dataDir);
  await assertEmptyTarget(dataDir, "--data-dir");
  if (options.member?.walDir) await assertEmptyTarget(resolve(options.member.walDir), "--wal-dir");
  await mkdir(dirname(dataDir), { recursive: true });
  const work = await createWorkFolder("restore", dirname(dataDir));
  try {
    return await restoreInto(work.path, { ...options, dataDir });
  } finally {
    await work.remove();
  }
}

async function restoreInto(work: string, options: RestoreSnapshotFileOptions): Promise<DataDirResult> {
  const dataDir = resolve(options.dataDir);
  const tool = options.tool ?? (await findRestoreTool(options.signal ? { signal: options.signal } : {}));
  const member = options.member ?? {};
  const walDir = member.walDir ? resolve(member.walDir) : undefined;
  const warnings: string[] = [];
  const warn = (line: string) => {
    warnings.push(line);
    options.onWarning?.(line);
  };
  const wanted = options.revisionBump ?? DEFAULT_REVISION_BUMP;
  if (!Number.isSafeInteger(wanted) || wanted < 0)
    throw new Error(`revision bump ${wanted} is not a whole number >= 0`);
  const bump = wanted > 0 && tool.supportsRevisionBump ? wanted : 0;
  if (wanted > 0 && !tool.supportsRevisionBump) {
    warn(
      `warning: ${tool.path} has no --bump-revision/--mark-compacted, so the restored revision is the snapshot's: ` +
        "lower than what Kubernetes apiservers, informers and watch caches have already seen, which can leave them " +
        "with stale objects or missed changes; restart every apiserver, controller and kubelet after the restore, " +
        "or restore with etcdutl from etcd 3.5.10+ (or etcdctl 3.4.27+) to bump the revision",
    );
  }
  const staged = join(work, "data");
  const args = ["snapshot", "restore", options.snapshotFile, "--data-dir", staged];
  if (member.name) args.push("--name", member.name);
  if (member.initialCluster) args.push("--initial-cluster", member.initialCluster);
  if (member.initialClusterToken) args.push("--initial-cluster-token", member.initialClusterToken);
  if (member.initialAdvertisePeerUrls)
    args.push("--initial-advertise-peer-urls", member.initialAdvertisePeerUrls);
  if (walDir) args.push("--wal-dir", walDir);
  if (member.skipHashCheck) args.push("--skip-hash-check");
  if (bump > 0) args.push("--bump-revision", String(bump), "--mark-compacted");

  // The tools refuse an existing directory, even an empty one.
  const walExisted = walDir ? Boolean(await stat(walDir).catch(() => null)) : false;
  if (walDir && walExisted) await rmdir(walDir);
  const run = await runTool(tool.path, args, {
    env: toolEnv(tool.kind),
    // The restored member's files are decrypted data: 0600 and 0700, here and once in place.
    privateFiles: true,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (run.code !== 0) {
    if (walDir) await rm(walDir, { recursive: true, force: true });
    if (walDir && walExisted) await mkdir(walDir, { mode: 0o700 }).catch(() => {});
    throw new Error(`${tool.kind} snapshot restore failed: ${toolErrorLine(run.stderr)}`);
  }
  crashPoint("data-dir-staged");
  if (await stat(dataDir).catch(() => null)) await rmdir(dataDir);
  await rename(staged, dataDir);
  await chmod(dataDir, 0o700);
  return { dataDir, ...(walDir ? { walDir } : {}), tool, revisionBump: bump, warnings };
}
