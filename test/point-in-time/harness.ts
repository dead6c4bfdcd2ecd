/**
 * Running `etcd-backup log` as users do (the built CLI, a long-running process) and waiting for what it has
 * closed, for the point-in-time e2e tests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import type { Store } from "../../src/store/store.ts";
import { CLI } from "../fixtures/cli.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";
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
