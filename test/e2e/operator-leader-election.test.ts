import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { assertNoSecrets, CLI } from "../fixtures/cli.ts";
import {
  ageDecrypt,
  backupSpec,
  bucketKeys,
  type Harness,
  startHarness,
  waitFor,
} from "../operator/harness.ts";

const run = promisify(execFile);

/** One `etcd-backup operator` process of the built CLI, its JSON log lines collected. */
interface Replica {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function startReplica(h: Harness, name: string): Replica {
  const child = spawn(
    process.execPath,
    [
      CLI,
      "operator",
      "--kubeconfig",
      h.kubeconfigPath,
      "--namespace",
      "default",
      "--leader-elect",
      "--lease-duration",
      "3s",
      "--renew-deadline",
      "2s",
      "--retry-period",
      "300ms",
      "--metrics-addr",
      "127.0.0.1:0",
      "--log-format",
      "json",
      "--retry-base",
      "500ms",
    ],
    { env: { ...process.env, HOSTNAME: name }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  child.stderr!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf("\n");
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
      i = buf.indexOf("\n");
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited };
}

const stored = (r: Replica) =>
  r.lines.filter((l) => l.msg === "backup stored").map((l) => l.backup as string);
const leads = (r: Replica) => r.lines.some((l) => l.msg === "became leader");

describe("operator e2e: two replicas with Lease leader election (built CLI, stand-in API server, real etcd and S3)", {
  timeout: 90_000,
}, () => {
  let h: Harness;
  let a: Replica;
  let b: Replica;

  before(async () => {
    h = await startHarness();
    a = startReplica(h, "replica-a");
    b = startReplica(h, "replica-b");
  });
  after(async () => {
    for (const r of [a, b]) if (r.child.exitCode === null) r.child.kill("SIGKILL");
    await h.stop();
  });

  const backup = (name: string) =>
    h.api.get("etcdbackups", "default", name) as
      | { status?: { phase?: string; key?: string; dbSize?: number } }
      | undefined;
  const create = (name: string) =>
    h.api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name, namespace: "default" },
      spec: backupSpec(h, { clusterName: name }),
    });

  it("one replica leads; each EtcdBackup is stored exactly once and opens with age -d", async () => {
    await waitFor("a leader", () => (leads(a) || leads(b) ? true : undefined));
    const lease = h.api.get("leases", "default", "etcd-backup-operator") as unknown as {
      spec: { holderIdentity: string };
    };
    assert.match(lease.spec.holderIdentity, /_[0-9a-f]{8}$/);
    assert.equal([a, b].filter(leads).length, 1, "exactly one leader");

    const names = ["b0", "b1", "b2", "b3", "b4"];
    for (const n of names) create(n);
    await waitFor(
      "all Succeeded",
      () => (names.every((n) => backup(n)?.status?.phase === "Succeeded") ? true : undefined),
      30_000,
    );
    const keys = await bucketKeys(h);
    for (const n of names) {
      const objects = keys.filter((k) => k.startsWith(`clusters/demo/${n}-`) && k.endsWith(".snap.zst.age"));
      assert.equal(objects.length, 1, `${n}: ${objects.join(", ")}`);
      assert.ok(keys.includes(`${objects[0]}.json`));
      assert.equal(backup(n)?.status?.key, objects[0]);
    }
    assert.equal(keys.filter((k) => k.endsWith(".pending")).length, 0);
    // Each backup ran once, in the leader only (log lines come through stdout and may trail the status).
    await waitFor(
      "every backup's log line",
      () => ([...stored(a), ...stored(b)].length >= names.length ? true : undefined),
      10_000,
    );
    const runs = [...stored(a), ...stored(b)].sort();
    assert.deepEqual(runs, names.map((n) => `default/${n}`).sort());
    assert.equal([a, b].filter((r) => stored(r).length > 0).length, 1);

    // The stored object is an age file for the CR's recipient holding the zstd-compressed snapshot.
    const plain = await ageDecrypt(h, backup("b0")!.status!.key!);
    const dbPath = join(h.dir, "b0.db");
    await writeFile(join(h.dir, "b0.zst"), plain);
    await run("zstd", ["-d", "-q", "-f", "-o", dbPath, join(h.dir, "b0.zst")]);
    assert.equal((await stat(dbPath)).size, backup("b0")!.status!.dbSize! + 32, "db plus its sha256 trailer");
  });

  it("each replica serves the status page on --metrics-addr: the leader's groups the backups by cluster", async () => {
    const port = (r: Replica) =>
      (r.lines.find((l) => l.msg === "metrics listening")?.addr as { port: number } | undefined)?.port;
    const [leader, standby] = leads(a) ? [a, b] : [b, a];
    const get = async (r: Replica, path: string) => {
      const res = await fetch(`http://127.0.0.1:${port(r)}${path}`);
      assert.equal(res.status, 200, path);
      return { type: res.headers.get("content-type") ?? "", body: await res.text() };
    };
    type Status = {
      role: string;
      clusters: { name: string; counts: Record<string, number>; latestBackups: { key?: string }[] }[];
    };
    // The page reads the leader's caches, which follow the API server through the watch.
    const json = await waitFor("the leader's page to show five stored backups", async () => {
      const got = await get(leader, "/status.json");
      const s = JSON.parse(got.body) as Status;
      return s.clusters.filter((c) => c.counts.Succeeded === 1).length === 5 ? got : undefined;
    });
    assert.match(json.type, /^application\/json/);
    const status = JSON.parse(json.body) as Status;
    assert.equal(status.role, "leader");
    assert.deepEqual(
      status.clusters.map((c) => c.name),
      ["b0", "b1", "b2", "b3", "b4"],
    );
    for (const c of status.clusters) {
      assert.deepEqual(c.counts, { Pending: 0, Running: 0, Succeeded: 1, Failed: 0 }, c.name);
      assert.equal(c.latestBackups[0]?.key, backup(c.name)?.status?.key);
    }
    const page = await get(leader, "/");
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /<h2>b3<\/h2>/);
    assert.equal(JSON.parse((await get(standby, "/status.json")).body).role, "standby");
    assert.equal((await get(standby, "/readyz")).body, "standby\n");
    assert.equal((await get(leader, "/readyz")).body, "leader\n");
    assertNoSecrets(json.body + page.body, "the operator's status page");
  });

  it("when the leader stops (SIGTERM) it releases the Lease, exits 0, and the other replica takes over", async () => {
    const [leader, standby] = leads(a) ? [a, b] : [b, a];
    leader.child.kill("SIGTERM");
    assert.equal(await leader.exited, 0);
    assert.ok(leader.lines.some((l) => l.msg === "released the leader Lease"));
    await waitFor("the standby to lead", () => (leads(standby) ? true : undefined), 10_000);
    create("after-failover");
    await waitFor(
      "Succeeded",
      () => (backup("after-failover")?.status?.phase === "Succeeded" ? true : undefined),
      20_000,
    );
    // The status reaches the API server over HTTP, the log line through the child's stdout: either may come first.
    await waitFor("the standby's log line", () => (stored(standby).length > 0 ? true : undefined), 10_000);
    assert.deepEqual(stored(standby), ["default/after-failover"]);
    const keys = await bucketKeys(h);
    assert.equal(
      keys.filter((k) => k.startsWith("clusters/demo/after-failover-") && k.endsWith(".age")).length,
      1,
    );
    // Nothing ran twice across the whole test.
    const all = [...stored(a), ...stored(b)];
    assert.equal(new Set(all).size, all.length);
    standby.child.kill("SIGTERM");
    assert.equal(await standby.exited, 0);
  });
});
