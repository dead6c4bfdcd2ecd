/**
 * Running `etcd-backup log` as users do (the built CLI, a long-running process) and waiting for what it has
 * closed, for the point-in-time e2e tests.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { LocalStore } from "../../src/store/local.ts";
import { S3Store } from "../../src/store/s3.ts";
import type { Store } from "../../src/store/store.ts";
import { CLI, keygen } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { minioPeer, skipReason } from "../fixtures/peers.ts";
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

/**
 * Where a log test bed keeps its backups and log: a directory, or a bucket on the real MinIO server
 * (test/fixtures/minio-server.ts). The tests are written once against `LogTestBed` and run on each kind.
 */
export type LogStoreKind = "directory" | "minio";

/**
 * The store kinds to run on, each with its `skip` option: MinIO is skipped (with the reason printed) where it is
 * not built, and missing in CI fails (test/fixtures/peers.ts).
 */
export function logStoreKinds(): { kind: LogStoreKind; skip: string | false }[] {
  return [
    { kind: "directory", skip: false },
    { kind: "minio", skip: skipReason(minioPeer(), "MinIO") },
  ];
}

/** What the log e2e tests share: a real etcd, a scratch folder, a store (directory or MinIO), an age key, a seed. */
export interface LogTestBed {
  kind: LogStoreKind;
  etcd: EtcdServer;
  work: string;
  /** The destination as the CLI takes it (`--to`): a directory or `s3://bucket/prefix`. */
  dest: string;
  /** The same store, for the test's own reads. */
  store: Store;
  /** Environment for every CLI run (the S3 endpoint and credentials with MinIO; empty for a directory). */
  env: NodeJS.ProcessEnv;
  kv: EtcdKv;
  identity: string;
  recipient: string;
  seed: number;
  /** The seed and how to rerun it, for assertion messages. */
  where: string;
  rng: SeededRandom;
  /** The store's objects, by key relative to `dest`, sorted (the test's view of what is there). */
  keys(): Promise<string[]>;
  /** An object's bytes; `writeObject` replaces them, `removeObject` deletes it (the tests' damage). */
  readObject(key: string): Promise<Buffer>;
  writeObject(key: string, bytes: Buffer): Promise<void>;
  removeObject(key: string): Promise<void>;
}

/**
 * Registers before/after hooks (call inside `describe`) that set up a `LogTestBed` on a store of `kind` and tear
 * it down (the gRPC client, etcd, MinIO, the scratch folder); `get` returns it inside a test. The seed is printed
 * as `# <label> seed N`.
 */
export function useLogTestBed(label: string, kind: LogStoreKind = "directory"): { get(): LogTestBed } {
  let bed: LogTestBed | undefined;
  let minio: TestMinioServer | undefined;
  before(async () => {
    const work = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-"));
    const etcd = await startEtcd();
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# ${label} (${kind}) seed ${seed}\n`);
    const { identity, recipient } = await keygen(work);
    let dest: string;
    let store: Store;
    let env: NodeJS.ProcessEnv = {};
    if (kind === "minio") {
      minio = await startMinio();
      await minio.createBucket("pitr");
      dest = "s3://pitr/log-tests";
      store = new S3Store({
        bucket: "pitr",
        prefix: "log-tests",
        settings: { endpoint: minio.endpoint, region: "us-east-1", pathStyle: true },
        credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      });
      env = {
        AWS_ACCESS_KEY_ID: minio.accessKeyId,
        AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
        AWS_ENDPOINT_URL: minio.endpoint,
        AWS_REGION: "us-east-1",
        ETCD_BACKUP_S3_PATH_STYLE: "true",
      };
    } else {
      dest = join(work, "store");
      mkdirSync(dest);
      store = new LocalStore(dest);
    }
    bed = {
      kind,
      etcd,
      work,
      dest,
      store,
      env,
      kv: new EtcdKv(etcd.endpoint),
      identity,
      recipient,
      seed,
      where: `seed ${seed} on ${kind} (rerun with ETCD_BACKUP_TEST_SEED=${seed})`,
      rng: new SeededRandom(seed),
      async keys() {
        const out: string[] = [];
        for await (const o of store.list()) out.push(o.key);
        return out.sort();
      },
      async readObject(key) {
        const chunks: Buffer[] = [];
        for await (const c of await store.get(key)) chunks.push(c as Buffer);
        return Buffer.concat(chunks);
      },
      async writeObject(key, bytes) {
        await store.put(key, Readable.from([bytes]));
      },
      async removeObject(key) {
        await store.delete(key);
      },
    };
  });
  after(async () => {
    bed?.kv.close();
    (bed?.store as { destroy?: () => void } | undefined)?.destroy?.();
    await bed?.etcd.destroy();
    await minio?.stop();
    if (bed) rmSync(bed.work, { recursive: true, force: true });
  });
  return {
    get: () => {
      if (!bed) throw new Error("the log test bed is used outside its describe block");
      return bed;
    },
  };
}
