/**
 * Running `etcd-backup log` as users do (the built CLI, a long-running process) and waiting for what it has
 * closed, for the point-in-time e2e tests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { LocalStore } from "../../src/store/local.ts";
import type { Store } from "../../src/store/store.ts";
import { CLI, keygen } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { compareDumps, etcdDump, snapshotTruth } from "../snapshot/differential.ts";

export interface LogProcess {
  child: ChildProcess;
  /** Everything it printed on stderr so far. */
  stderr(): string;
  /** SIGTERM and wait: the open segment is closed first. Resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: the open segment is lost. */
  kill(): Promise<void>;
}

export function startLog(args: string[], env: NodeJS.ProcessEnv = {}): LogProcess {
  const child = spawn(process.execPath, [CLI, "log", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    stop: async () => {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Waits until the cluster's newest chain has closed segments up to `revision`. */
export async function waitForReach(
  store: Store,
  cluster: string,
  revision: number,
  log?: LogProcess,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [clusterLog] = await readLogCatalog(store, { cluster });
    const reach = clusterLog?.chains.at(-1)?.reach ?? 0;
    if (reach >= revision) return;
    if (Date.now() > deadline) {
      assert.fail(
        `the log reached revision ${reach}, not ${revision}, in ${timeoutMs} ms\n${log?.stderr() ?? ""}`,
      );
    }
    await sleep(200);
  }
}

/**
 * The restored snapshot, served by a real etcd started on it, equals what the live etcd serves with
 * `etcdctl get --prefix "" --rev N -w json`: every key, value, create and mod revision, version and lease.
 */
export async function assertSameAsLiveAt(
  etcd: EtcdServer,
  snapshot: string,
  revision: number,
  context: string,
): Promise<number> {
  const truth = await etcdDump(etcd, { rev: revision });
  const restored = await snapshotTruth(snapshot);
  const diff = compareDumps(truth, restored);
  assert.equal(
    diff.lines.length,
    0,
    `${context}: restored state differs from etcd at revision ${revision} (${diff.differing} keys):\n${diff.lines.join("\n")}`,
  );
  return diff.compared;
}

/** What the log e2e tests share: a real etcd, a scratch folder with a directory store, an age key, a seed. */
export interface LogTestBed {
  etcd: EtcdServer;
  work: string;
  /** The directory store's path (`--to`), and the store itself. */
  dest: string;
  store: LocalStore;
  kv: EtcdKv;
  identity: string;
  recipient: string;
  seed: number;
  /** The seed and how to rerun it, for assertion messages. */
  where: string;
  rng: SeededRandom;
}

/**
 * Registers before/after hooks (call inside `describe`) that set up a `LogTestBed` and tear it down (the gRPC
 * client, etcd, the scratch folder); `get` returns it inside a test. The seed is printed as `# <label> seed N`.
 */
export function useLogTestBed(label: string): { get(): LogTestBed } {
  let bed: LogTestBed | undefined;
  before(async () => {
    const work = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-"));
    const etcd = await startEtcd();
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# ${label} seed ${seed}\n`);
    const { identity, recipient } = await keygen(work);
    const dest = join(work, "store");
    mkdirSync(dest);
    bed = {
      etcd,
      work,
      dest,
      store: new LocalStore(dest),
      kv: new EtcdKv(etcd.endpoint),
      identity,
      recipient,
      seed,
      where: `seed ${seed} (rerun with ETCD_BACKUP_TEST_SEED=${seed})`,
      rng: new SeededRandom(seed),
    };
  });
  after(async () => {
    bed?.kv.close();
    await bed?.etcd.destroy();
    if (bed) rmSync(bed.work, { recursive: true, force: true });
  });
  return {
    get: () => {
      if (!bed) throw new Error("the log test bed is used outside its describe block");
      return bed;
    },
  };
}
