import { randomBytes } from "node:crypto";
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import {
  currentProcess,
  identityOf,
  type ProcessIdentity,
  processCommandLine,
  processesNaming,
  processStart,
  processState,
} from "./process-identity.ts";

/**
 * Private work folders: where decrypted data is written on its way to a restore target (a snapshot file, a
 * staged data dir, a test restore with its etcd, a config archive being unpacked, a snapshot too large for
 * memory). Each folder is 0700, its files 0600, and it names its owner: its name holds the creating
 * process's pid and start time, and `owner.json` inside adds the boot and pid namespace. The owner removes it
 * when done; when the owner was killed (SIGKILL, OOM, power loss) `sweepWorkFolders`, which every restore,
 * verify and prune runs first, finds it by its name, sees that its owner is gone, stops any server left
 * running on it, and removes it.
 * Folders that do not live in the temporary directory (beside a data dir, an output file, a config target)
 * are also listed in a registry in the temporary directory, so a sweep from anywhere finds them.
 */
export const WORK_FOLDER_PREFIX = ".etcd-backup-work-";

/** What a work folder is for; part of its name, for people who find one. */
export type WorkKind = "restore" | "to-file" | "test-restore" | "read" | "config";

const OWNER_FILE = "owner.json";
const SERVER_FILE = "server.json";

/**
 * Folders whose owner cannot be asked (made by older releases without an owner, or by a process in another
 * pid namespace, such as a container since restarted) are removed once this old: no restore or read runs
 * for a day.
 */
const UNOWNED_GRACE_MS = 24 * 3600_000;
const LEGACY_PREFIXES = [
  ".etcd-backup-restore-",
  "etcd-backup-test-restore-",
  "etcd-backup-read-",
  ".etcd-backup-config-",
];

export interface WorkFolder {
  path: string;
  kind: WorkKind;
  /**
   * Records a server process that runs on the folder's data, so that a sweep after its owner died stops it
   * too (its command line must name the folder).
   */
  recordServer(pid: number): Promise<void>;
  /** Removes the folder and its registry entry. Safe to call twice. */
  remove(): Promise<void>;
}

interface OwnerRecord {
  owner: ProcessIdentity;
  kind: WorkKind;
  created: string;
}

/** The registry of work folders, in the temporary directory, one per user. */
function registryDir(): string {
  const uid = process.getuid?.() ?? "user";
  return join(tmpdir(), `${WORK_FOLDER_PREFIX}registry-${uid}`);
}

/** Opens the registry for writing: creates it 0700, and refuses one this user does not own alone. */
async function openRegistry(): Promise<string | null> {
  const dir = registryDir();
  await mkdir(dir, { mode: 0o700 }).catch(() => {});
  return (await isPrivateDir(dir)) ? dir : null;
}

async function isPrivateDir(dir: string): Promise<boolean> {
  const info = await lstat(dir).catch(() => null);
  if (!info?.isDirectory()) return false;
  const uid = process.getuid?.();
  return (uid === undefined || info.uid === uid) && (info.mode & 0o077) === 0;
}

/**
 * Creates a private work folder in `parent` (the temporary directory when absent): mode 0700, named after
 * its kind and this process, with `owner.json` inside. Folders outside the temporary directory are added to
 * the registry. The caller removes it with `remove()` when done, on success and failure alike.
 */
export async function createWorkFolder(kind: WorkKind, parent: string = tmpdir()): Promise<WorkFolder> {
  const me = currentProcess();
  const dir = resolve(parent);
  const name = `${WORK_FOLDER_PREFIX}${kind}-${me.pid}-${me.start ?? "0"}-${randomBytes(6).toString("hex")}`;
  const path = join(dir, name);
  // mkdir, not mkdtemp: the name must hold the owner from the first moment the folder exists.
  await mkdir(path, { mode: 0o700 });
  await chmod(path, 0o700);
  const record: OwnerRecord = { owner: me, kind, created: new Date().toISOString() };
  await writeFile(join(path, OWNER_FILE), `${JSON.stringify(record)}\n`, { mode: 0o600, flag: "wx" });
  let link: string | undefined;
  if (dir !== resolve(tmpdir())) {
    const registry = await openRegistry();
    if (registry) {
      link = join(registry, name);
      await symlink(path, link).catch(() => {
        link = undefined;
      });
    }
  }
  return {
    path,
    kind,
    recordServer: (pid: number) => recordServer(path, pid),
    async remove() {
      await rm(path, { recursive: true, force: true });
      if (link) await unlink(link).catch(() => {});
    },
  };
}

/**
 * Records in a work folder a server process that runs on its data, so that a sweep after the folder's owner
 * died stops it too (its command line must name the folder).
 */
export async function recordServer(folder: string, pid: number): Promise<void> {
  // With this process's boot and pid namespace: the server's pid means something only there.
  const server = identityOf(pid);
  // Written aside and renamed: a sweep never reads half a record.
  const temp = join(folder, `${SERVER_FILE}.${process.pid}`);
  await writeFile(temp, `${JSON.stringify(server)}\n`, { mode: 0o600 });
  await rename(temp, join(folder, SERVER_FILE));
}

/** One folder a sweep removed. */
export interface SweptFolder {
  path: string;
  /** The pid of the run that left it, when known. */
  ownerPid?: number;
  /** The pid of a server (a test-restore etcd) that still ran on it and was stopped. */
  stoppedServer?: number;
}

export interface SweepResult {
  removed: SweptFolder[];
  /** Folders of dead owners that could not be removed, with why. */
  failures: { path: string; error: string }[];
}

/**
 * Removes the work folders whose owner is dead: those in the registry, in the temporary directory and in
 * `dirs` (the directory a restore writes into, whose leftovers the registry may not know after a reboot
 * cleared the temporary directory). A server still running on such a folder is killed first. Folders of live
 * owners and of other users (unless run as root) are left alone, and those of owners in another pid namespace
 * until they are a day old.
 * Never rejects: what cannot be removed is listed in `failures`.
 */
export async function sweepWorkFolders(dirs: string[] = []): Promise<SweepResult> {
  const result: SweepResult = { removed: [], failures: [] };
  const candidates = new Map<string, string | undefined>();
  const registry = registryDir();
  if (await isPrivateDir(registry)) {
    for (const name of await readdir(registry).catch(() => [] as string[])) {
      const link = join(registry, name);
      const target = await readlink(link).catch(() => null);
      if (target && basename(target) === name && name.startsWith(WORK_FOLDER_PREFIX))
        candidates.set(resolve(target), link);
      else await unlink(link).catch(() => {});
    }
  }
  for (const dir of new Set([tmpdir(), ...dirs].map((d) => resolve(d)))) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (isWorkFolderName(name) || LEGACY_PREFIXES.some((p) => name.startsWith(p))) {
        const path = join(dir, name);
        if (!candidates.has(path)) candidates.set(path, undefined);
      }
    }
  }
  // Outer folders first: a work folder made inside another (a test restore's) goes with it, unreported.
  const ordered = [...candidates].sort(([a], [b]) => a.length - b.length);
  for (const [path, link] of ordered) {
    try {
      const swept = await sweepOne(path);
      if (swept !== "kept" && link) await unlink(link).catch(() => {});
      if (swept !== "gone" && swept !== "kept") result.removed.push(swept);
    } catch (err) {
      result.failures.push({ path, error: (err as Error).message });
    }
  }
  return result;
}

function isWorkFolderName(name: string): boolean {
  return name.startsWith(WORK_FOLDER_PREFIX) && !name.startsWith(`${WORK_FOLDER_PREFIX}registry-`);
}

async function sweepOne(path: string): Promise<SweptFolder | "kept" | "gone"> {
  const info = await lstat(path).catch(() => null);
  if (!info) return "gone";
  if (!info.isDirectory()) return "kept";
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0 && info.uid !== uid) return "kept";
  const name = basename(path);
  const owner = isWorkFolderName(name) ? await readOwner(path, name) : undefined;
  if (owner) {
    const me = currentProcess();
    if (owner.pid === me.pid && owner.start === me.start) return "kept";
    const state = processState(owner);
    if (state === "alive") return "kept";
    // Another pid namespace (a restarted container sharing the directory): judged by age alone.
    if (state === "unknown" && Date.now() - info.mtimeMs < UNOWNED_GRACE_MS) return "kept";
  } else if (Date.now() - info.mtimeMs < UNOWNED_GRACE_MS) {
    return "kept";
  }
  const swept: SweptFolder = { path, ...(owner ? { ownerPid: owner.pid } : {}) };
  const server = await stopRecordedServer(path);
  if (server) swept.stoppedServer = server;
  // A tool the dead owner started on the folder (etcdutl restoring into it) may still run: it would go on
  // writing decrypted data, and recreate what we remove.
  await stopProcessesNaming(path);
  await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  return swept;
}

/** The owner from `owner.json`, or from the folder's name when the owner died before writing the file. */
async function readOwner(path: string, name: string): Promise<ProcessIdentity | undefined> {
  try {
    const record = JSON.parse(await readFile(join(path, OWNER_FILE), "utf8")) as OwnerRecord;
    if (Number.isSafeInteger(record.owner?.pid)) return record.owner;
  } catch {}
  const m = /-(\d+)-(\d+)-[0-9a-f]+$/.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), ...(m[2] !== "0" ? { start: m[2] } : {}) };
}

/**
 * Kills a server recorded in the folder (`recordServer`) that still runs on it; resolves to its pid when there
 * was one. For an owner whose own way of stopping it failed, and for sweeps.
 */
export async function stopRecordedServer(path: string): Promise<number | undefined> {
  let server: ProcessIdentity;
  try {
    server = JSON.parse(await readFile(join(path, SERVER_FILE), "utf8")) as ProcessIdentity;
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(server.pid) || processState(server) !== "alive") return undefined;
  // Only a process that runs on this folder: a reused pid belongs to someone else.
  if (!processCommandLine(server.pid)?.includes(path)) return undefined;
  try {
    process.kill(server.pid, "SIGKILL");
  } catch {
    return undefined;
  }
  const deadline = Date.now() + 5000;
  while (processState(server) === "alive" && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  return server.pid;
}

/** SIGKILLs every process whose command line names `path` (see `processesNaming`) and waits up to 5 s for them. */
async function stopProcessesNaming(path: string): Promise<void> {
  const pids = processesNaming(path).filter((pid) => {
    try {
      process.kill(pid, "SIGKILL");
      return true;
    } catch {
      return false; // gone meanwhile, or not ours to stop
    }
  });
  const deadline = Date.now() + 5000;
  while (pids.some((pid) => processStart(pid) !== undefined) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
}

/** One line per swept folder and failure, for a front end to print as notes on stderr. */
export function describeSweep(result: SweepResult): string[] {
  return [
    ...result.removed.map(
      (s) =>
        `removed ${s.path}, left by a killed run${s.ownerPid ? ` (pid ${s.ownerPid})` : ""}` +
        (s.stoppedServer ? `, and stopped the etcd (pid ${s.stoppedServer}) still running on it` : ""),
    ),
    ...result.failures.map((f) => `warning: cannot remove ${f.path}, left by a killed run: ${f.error}`),
  ];
}
