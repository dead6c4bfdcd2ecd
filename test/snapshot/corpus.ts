import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";

const run = promisify(execFile);

/** A snapshot taken by `etcdctl snapshot save` from a real etcd, at some step of a scripted history. */
export interface CorpusSnapshot {
  name: string;
  path: string;
}

/** Runs `etcdctl snapshot status -w json` on a file: the reference our status must equal. */
export async function etcdctlStatus(path: string): Promise<unknown> {
  const { stdout } = await run("/usr/bin/etcdctl", ["snapshot", "status", "-w", "json", path], {
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  return JSON.parse(stdout);
}

/** Writes `count` keys through a few big transactions (etcd started with a high --max-txn-ops). */
export async function putMany(
  etcd: EtcdServer,
  count: number,
  prefix: string,
  value: (i: number) => string,
): Promise<void> {
  const perTxn = 10_000;
  const txns: Promise<string>[] = [];
  for (let start = 0; start < count; start += perTxn) {
    const lines = [""];
    for (let i = start; i < Math.min(count, start + perTxn); i++)
      lines.push(`put ${prefix}${String(i).padStart(7, "0")} ${value(i)}`);
    lines.push("", "", "");
    txns.push(etcd.ctl(["txn"], { input: lines.join("\n") }));
  }
  await Promise.all(txns);
}

/** Starts an etcd that accepts large transactions, for fast corpus building. */
export async function startCorpusEtcd(): Promise<EtcdServer> {
  return await startEtcd({ args: ["--max-txn-ops", "20000", "--max-request-bytes", "10485760"] });
}

/**
 * Builds the snapshot corpus from one real etcd: empty, a few keys, 100 KB values (overflow pages), after
 * deletes, with leases, 100k keys, after compaction and defrag, with auth enabled. Call `cleanup` at the end.
 */
export async function buildCorpus(): Promise<{
  dir: string;
  snapshots: CorpusSnapshot[];
  cleanup: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-corpus-"));
  const etcd = await startCorpusEtcd();
  const snapshots: CorpusSnapshot[] = [];
  const save = async (name: string, extra: string[] = []) => {
    const path = join(dir, `${name}.db`);
    await etcd.ctl([...extra, "snapshot", "save", path]);
    snapshots.push({ name, path });
  };
  try {
    await save("empty");
    for (const k of ["alpha", "beta", "gamma"]) await etcd.ctl(["put", `/few/${k}`, `value of ${k}`]);
    await save("few-keys");
    for (let i = 0; i < 3; i++) await etcd.ctl(["put", `/big/${i}`], { input: String(i).repeat(100_000) });
    await save("overflow-100kb");
    await etcd.ctl(["del", "/few/beta"]);
    await etcd.ctl(["del", "/big/1"]);
    await save("after-deletes");
    const granted = await etcd.ctl(["lease", "grant", "600"]);
    const leaseId = /lease ([0-9a-f]+) granted/.exec(granted)?.[1];
    if (!leaseId) throw new Error(`unexpected lease grant output: ${granted}`);
    await etcd.ctl(["put", "--lease", leaseId, "/leased/a", "1"]);
    await etcd.ctl(["lease", "grant", "3600"]);
    await save("with-leases");
    await putMany(etcd, 100_000, "/many/", (i) => `value-${i}`);
    await save("100k-keys");
    await etcd.ctl(["del", "--prefix", "/many/00"]);
    const rev = JSON.parse(await etcd.ctl(["get", "/few/alpha", "-w", "json"])).header.revision as number;
    await etcd.ctl(["compact", String(rev)]);
    await etcd.ctl(["defrag"]);
    await save("compacted-defragmented");
    await etcd.ctl(["user", "add", "root:pw"]);
    await etcd.ctl(["auth", "enable"]);
    await save("auth-enabled", ["--user", "root:pw"]);
  } finally {
    await etcd.destroy();
  }
  return { dir, snapshots, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
