/**
 * `EtcdBackupSchedule.spec.continuous: true` through the operator harness (the API server stand-in, real etcd,
 * real S3 server): the operator runs the revision log beside the schedule (the daemon's code), its status shows
 * the recoverable window growing with etcd's writes, `restore --revision` from the bucket gives exactly the live
 * etcd's state at a revision inside the window, and deleting the schedule stops the log.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { checkScheduleSpec } from "../../src/operator/spec.ts";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { S3Store } from "../../src/store/s3.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { assertSameAsLiveAt } from "../point-in-time/harness.ts";
import { writePhase } from "../point-in-time/phases.ts";
import { currentRevision } from "../point-in-time/workload.ts";
import { backupSpec, type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

/**
 * The log catalog, read while the log may be writing: s3rver (the S3 stand-in here) does not replace an object
 * atomically, so a read racing the log's head update can see it half written; such a read is tried again.
 */
async function readCatalog(store: S3Store, cluster: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readLogCatalog(store, { cluster });
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// biome-ignore lint/suspicious/noExplicitAny: status fields are checked one by one
type Obj = { metadata: { name: string }; status?: Record<string, any> };

describe("spec.continuous: the operator runs the revision log beside the schedule", () => {
  let h: Harness;
  let stop: AbortController;
  let running: Promise<void>;
  let kv: EtcdKv;

  before(async () => {
    h = await startHarness();
    kv = new EtcdKv(h.etcd.endpoint);
    stop = new AbortController();
    running = runOperator(
      {
        kube: h.kube,
        namespace: "default",
        maxConcurrent: 1,
        identity: "test-operator",
        metrics: new OperatorMetrics(),
        log: quietLog(),
        watchTimeoutSeconds: 5,
      },
      stop.signal,
    );
  });
  after(async () => {
    kv?.close();
    stop.abort();
    await running;
    await h.stop();
  });

  it("status shows the window; restore --revision inside it equals etcd; deleting the schedule stops the log", async () => {
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# operator continuous seed ${seed}\n`);
    const rng = new SeededRandom(seed);
    const where = `seed ${seed} (rerun with ETCD_BACKUP_TEST_SEED=${seed})`;
    await writePhase(kv, rng, 0, 20);
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name: "pitr", namespace: "default" },
      spec: {
        schedule: "0 0 1 1 *", // yearly: the log takes its own full backup to start its chain
        continuous: true,
        segmentIntervalSeconds: 1,
        template: { spec: backupSpec(h, { clusterName: "pitr" }) },
      },
    });
    const schedule = () => h.api.get("etcdbackupschedules", "default", "pitr") as Obj | undefined;
    // The log runs: status says so before anything is closed (no write yet since its full backup).
    const first = await waitFor("the log's status", () => schedule()?.status?.pointInTime, 60_000);
    assert.match(first.message, /^(nothing closed yet|recoverable from .*)$/);
    const p1 = await writePhase(kv, rng, 1, 40);
    const p2 = await writePhase(kv, rng, 2, 40);
    const window = await waitFor(
      "the window to reach the writes",
      () => {
        const pit = schedule()?.status?.pointInTime;
        return pit && pit.recoverableToRevision >= p2 ? pit : undefined;
      },
      60_000,
    );
    assert.match(window.message, /^recoverable from \S+ \(revision \d+\) to \S+ \(revision \d+\)$/);
    assert.ok(window.recoverableFromRevision < p1, JSON.stringify(window));
    assert.equal(await currentRevision(kv), p2);

    // The log is in the template's destination, where restore finds it.
    const store = new S3Store({
      bucket: h.bucket,
      prefix: "clusters/demo",
      settings: { endpoint: h.s3.endpoint, region: "us-east-1", pathStyle: true },
      credentials: { accessKeyId: h.s3.accessKeyId, secretAccessKey: h.s3.secretAccessKey },
    });
    try {
      const [log] = await readCatalog(store, "pitr");
      assert.ok(log, "no revision log in the bucket");
      assert.ok(log.chains.at(-1)!.reach >= p2);
    } finally {
      store.destroy();
    }
    const revision = rng.int(p1, p2);
    const out = join(h.dir, "point.db");
    const restored = await runCli(
      [
        ...["restore", "--revision", String(revision), "--to", `s3://${h.bucket}/clusters/demo`],
        ...[
          "--cluster",
          "pitr",
          "--s3-endpoint",
          h.s3.endpoint,
          "--s3-path-style",
          "--s3-region",
          "us-east-1",
        ],
        ...["-i", h.identityPath, "--to-file", out],
      ],
      {
        env: { AWS_ACCESS_KEY_ID: h.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: h.s3.secretAccessKey },
        timeoutMs: 240_000,
      },
    );
    assertOk(restored);
    const compared = await assertSameAsLiveAt(h.etcd, out, revision, `${where}, --revision ${revision}`);
    process.stdout.write(
      `# --revision ${revision} from the operator's log: ${compared} keys equal to etcd\n`,
    );

    // Deleted: the log stops (its open segment closed first); later writes are not logged.
    h.api.remove("etcdbackupschedules", "default", "pitr");
    await new Promise((r) => setTimeout(r, 3000));
    const p3 = await writePhase(kv, rng, 3, 10);
    await new Promise((r) => setTimeout(r, 3000));
    const again = new S3Store({
      bucket: h.bucket,
      prefix: "clusters/demo",
      settings: { endpoint: h.s3.endpoint, region: "us-east-1", pathStyle: true },
      credentials: { accessKeyId: h.s3.accessKeyId, secretAccessKey: h.s3.secretAccessKey },
    });
    try {
      const [log] = await readLogCatalog(again, { cluster: "pitr" });
      assert.ok(log!.chains.at(-1)!.reach < p3, `${where}: the log went on after the schedule was deleted`);
    } finally {
      again.destroy();
    }
  });

  it("retention prunes the log with the backups (the chain is cut at the oldest kept one); suspend stops the log", async () => {
    const seed = testSeed((Date.now() + 1) % 1_000_000);
    process.stdout.write(`# operator continuous retention seed ${seed}\n`);
    const rng = new SeededRandom(seed);
    const where = `seed ${seed} (rerun with ETCD_BACKUP_TEST_SEED=${seed})`;
    const spec = {
      schedule: "*/5 * * * * *",
      continuous: true,
      segmentIntervalSeconds: 1,
      retention: { keepLast: 1 },
      template: { spec: backupSpec(h, { clusterName: "gfs" }) },
    };
    h.api.put("etcdbackupschedules", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackupSchedule",
      metadata: { name: "gfs", namespace: "default" },
      spec,
    });
    const schedule = () => h.api.get("etcdbackupschedules", "default", "gfs") as Obj | undefined;
    await waitFor("the log's status", () => schedule()?.status?.pointInTime, 60_000);
    const store = new S3Store({
      bucket: h.bucket,
      prefix: "clusters/demo",
      settings: { endpoint: h.s3.endpoint, region: "us-east-1", pathStyle: true },
      credentials: { accessKeyId: h.s3.accessKeyId, secretAccessKey: h.s3.secretAccessKey },
    });
    try {
      // Writes go on while the backups every 5 s move the kept one forward; a new batch is written only once the
      // log has closed the last one, so the cut is seen on a chain that holds every write (writing on each poll and
      // reading at once asked the log to have closed writes made a moment before, which it rarely had under load).
      let last = await writePhase(kv, rng, 10, 10);
      const cut = await waitFor(
        "a scheduled prune to cut the log's chain",
        async () => {
          const [log] = await readCatalog(store, "gfs");
          const chain = log?.chains.at(-1);
          if (!chain || chain.reach < last) return undefined;
          if (chain.start > chain.base) return chain;
          last = await writePhase(kv, rng, 10 + rng.int(0, 5), 10);
          return undefined;
        },
        120_000,
      );
      // Writes after the kept backup, closed in the log, so that the restore below replays segments.
      last = await writePhase(kv, rng, 19, 15);
      await waitFor("the log to reach the last writes", async () => {
        const [log] = await readCatalog(store, "gfs");
        return (log?.chains.at(-1)?.reach ?? 0) >= last ? true : undefined;
      });
      // Suspended: the log stops, its status goes; the catalog stays as it is for the restore below.
      h.api.put("etcdbackupschedules", "default", {
        ...(schedule() as object),
        spec: { ...spec, suspend: true },
      } as never);
      await waitFor(
        "pointInTime removed",
        () => (schedule()?.status?.pointInTime ? undefined : true),
        30_000,
      );
      await new Promise((r) => setTimeout(r, 3000)); // a backup in flight finishes, and its prune
      const [log] = await readLogCatalog(store, { cluster: "gfs" });
      const chain = log!.chains.at(-1)!;
      assert.deepEqual(chain.holes, []);
      const after = await writePhase(kv, rng, 20, 5);
      await new Promise((r) => setTimeout(r, 2500));
      const [stopped] = await readLogCatalog(store, { cluster: "gfs" });
      assert.ok(stopped!.chains.at(-1)!.reach < after, `${where}: the log went on while suspended`);

      process.stdout.write(`# chain ${chain.base}: pruned through ${chain.start}, up to ${chain.reach}\n`);
      assert.ok(chain.start > cut.base, `${where}: the chain was not cut`);
      const revision = rng.int(chain.start, chain.reach);
      const out = join(h.dir, "gfs-point.db");
      const restored = await runCli(
        [
          ...["restore", "--revision", String(revision), "--to", `s3://${h.bucket}/clusters/demo`],
          ...[
            "--cluster",
            "gfs",
            "--s3-endpoint",
            h.s3.endpoint,
            "--s3-path-style",
            "--s3-region",
            "us-east-1",
          ],
          ...["-i", h.identityPath, "--to-file", out],
        ],
        {
          env: { AWS_ACCESS_KEY_ID: h.s3.accessKeyId, AWS_SECRET_ACCESS_KEY: h.s3.secretAccessKey },
          timeoutMs: 240_000,
        },
      );
      assertOk(restored);
      await assertSameAsLiveAt(h.etcd, out, revision, `${where}, --revision ${revision} after the cut`);
    } finally {
      store.destroy();
    }
  });
});

it("spec.continuous with a Talos source is refused by the spec check (the Talos API has no watch)", () => {
  const spec = {
    schedule: "0 * * * *",
    continuous: true,
    template: {
      spec: {
        source: { talos: { inCluster: true } },
        destination: { s3: { bucket: "backups" } },
        encryption: { none: true },
      },
    },
  };
  assert.throws(() => checkScheduleSpec(spec), /spec\.continuous: the revision log needs an etcd source/);
  assert.doesNotThrow(() => checkScheduleSpec({ ...spec, continuous: false }));
});
