/**
 * Every key a real etcd serves from a snapshot, against what our reader returns for it (see
 * differential.ts), on snapshots of several shapes: 500 keys with values on every page and window boundary up
 * to 1 MiB, 5,000 Kubernetes-shaped keys with 40 KB objects, history, compaction and defragmentation, and
 * 50,000 small keys with rewrites. Reproduce a failure with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BoltDb } from "../../src/bbolt/db.ts";
import { parseKubernetesKey } from "../../src/kubernetes/key.ts";
import { snapshotFileStatus } from "../../src/mvcc/status.ts";
import { diffSnapshots } from "../../src/snapshot/diff.ts";
import { findObject } from "../../src/snapshot/get.ts";
import { inspectSnapshot } from "../../src/snapshot/inspect.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { etcdctlStatus, startCorpusEtcd } from "./corpus.ts";
import {
  BOUNDARY_SIZES,
  bothWays,
  compareDumps,
  type Dump,
  expectedChanges,
  expectedInspect,
  getDump,
  replayDump,
  type ShapedSnapshot,
  saveSnapshot,
  snapshotTruth,
  writeShape,
} from "./differential.ts";

const seed = testSeed(20261130);
const rng = new SeededRandom(seed);
const where = `(seed ${seed}; rerun with ETCD_BACKUP_TEST_SEED=${seed})`;

describe(`differential: our reader against a real etcd, every key ${where}`, () => {
  let dir: string;
  const shots = new Map<string, ShapedSnapshot>();
  let totalCompared = 0;

  const shape = async (
    names: string[],
    build: (
      etcd: Awaited<ReturnType<typeof startCorpusEtcd>>,
      save: (n: string) => Promise<void>,
    ) => Promise<void>,
  ) => {
    const etcd = await startCorpusEtcd();
    try {
      await build(etcd, async (name) => {
        const path = await saveSnapshot(etcd, dir, name);
        shots.set(name, { name, path, truth: { revision: 0, keys: new Map() } });
      });
    } finally {
      await etcd.destroy();
    }
    for (const n of names) shots.get(n)!.truth = await snapshotTruth(shots.get(n)!.path);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-differential-"));
    // 500 keys: every boundary size once, then sizes up to 3 KB; leases, rewrites, deletions.
    let boundary = 0;
    await shape(["boundaries-500"], async (etcd, save) => {
      await writeShape(etcd, rng, {
        keys: 500,
        size: () => (boundary < BOUNDARY_SIZES.length ? BOUNDARY_SIZES[boundary++]! : rng.int(0, 3000)),
        leases: 3,
        rewrites: 20,
        deletes: 30,
      });
      await save("boundaries-500");
    });
    // 5,000 Kubernetes-shaped keys (200-1100 bytes, every 50th a ~40 KB ConfigMap), as the report;
    // then history, a compaction, more writes, and a defragmented copy of the same content.
    await shape(["k8s-5000-a", "k8s-5000-b", "k8s-5000-b-defrag"], async (etcd, save) => {
      let n = 0;
      const size = () => (n++ % 50 === 49 ? rng.int(38_000, 42_000) : rng.int(200, 1100));
      await writeShape(etcd, rng, { keys: 5000, size, leases: 2, rewrites: 5, deletes: 100 });
      await save("k8s-5000-a");
      const kv = new EtcdKv(etcd.endpoint);
      try {
        const rev = await kv.txn([{ key: "/registry/marker", value: "compaction" }]);
        await kv.compact(rev);
        await writeShape(etcd, rng, { keys: 800, size, rewrites: 3, deletes: 50 });
        await save("k8s-5000-b");
        await kv.defragment();
        await save("k8s-5000-b-defrag");
      } finally {
        kv.close();
      }
    });
    // 50,000 small keys with some 100-300 KB values, rewrites and a compaction.
    await shape(["small-50000"], async (etcd, save) => {
      let n = 0;
      const size = () => (n++ % 1000 === 999 ? rng.int(100_000, 300_000) : rng.int(0, 800));
      await writeShape(etcd, rng, { keys: 50_000, size, leases: 4, rewrites: 3, deletes: 500 });
      const kv = new EtcdKv(etcd.endpoint);
      try {
        await kv.compact(await kv.txn([{ key: "/registry/marker", value: "x" }]));
      } finally {
        kv.close();
      }
      await save("small-50000");
    });
  });

  after(async () => {
    console.log(`differential: ${totalCompared} key comparisons against etcd, 0 differing ${where}`);
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of ["boundaries-500", "k8s-5000-a", "k8s-5000-b", "k8s-5000-b-defrag", "small-50000"]) {
    test(`${name}: every key's value, revisions, version and lease equal etcd's`, async () => {
      const shot = shots.get(name)!;
      assert.ok(shot.truth.keys.size > 0, `${name}: etcd served no keys`);
      const results = await bothWays(shot.path, (db, how) => [
        { how: `${how}, MVCC replay`, ...compareDumps(shot.truth, replayDump(db)) },
        {
          how: `${how}, get -o raw`,
          ...compareDumps(shot.truth, getDump(db, shot.truth.keys.keys(), shot.truth.revision)),
        },
      ]);
      for (const r of results.flat()) {
        totalCompared += r.compared;
        assert.equal(
          r.differing,
          0,
          `${name} ${r.how}: ${r.differing} of ${r.compared} keys differ ${where}\n${r.lines.join("\n")}`,
        );
      }
    });

    test(`${name}: status equals etcdctl snapshot status`, async () => {
      const shot = shots.get(name)!;
      // As etcdctl 3.4 prints it: without the storage version an etcd 3.6 snapshot records.
      const { version: _, ...status } = snapshotFileStatus(shot.path);
      assert.deepEqual(status, await etcdctlStatus(shot.path));
    });

    test(`${name}: inspect's counts and sizes equal those of etcd's keys`, async () => {
      const shot = shots.get(name)!;
      const want = expectedInspect(shot.truth);
      for (const got of await bothWays(shot.path, (db) => inspectSnapshot(db, { top: 5 }))) {
        assert.equal(got.keys, want.keys, where);
        assert.equal(got.bytes, want.bytes, where);
        assert.equal(got.leases.attachedKeys, want.attachedKeys, where);
        assert.deepEqual(got.outsideRegistry, want.outside, where);
        assert.deepEqual(
          new Map(got.resources.map((r) => [r.resource, { count: r.count, bytes: r.bytes }])),
          want.resources,
          where,
        );
        assert.deepEqual(
          new Map(got.namespaces.map((r) => [r.namespace, { count: r.count, bytes: r.bytes }])),
          want.namespaces,
          where,
        );
        const sizes = [...shot.truth.keys.values()].map((k) => k.value.length).sort((a, b) => b - a);
        assert.deepEqual(
          got.biggest.map((b) => b.bytes),
          sizes.slice(0, 5),
          where,
        );
      }
    });

    test(`${name}: diff with itself is empty; --resource/--namespace/--name finds the key's object`, async () => {
      const shot = shots.get(name)!;
      for (const d of await bothWays(shot.path, (db) => diffSnapshots(db, db))) {
        assert.deepEqual(d.changes, [], where);
      }
      const registry = [...shot.truth.keys.keys()]
        .map((n) => Buffer.from(n, "latin1").toString("utf8"))
        .filter((k) => parseKubernetesKey(k));
      const sample = Array.from({ length: 25 }, () => rng.pick(registry));
      await bothWays(shot.path, (db) => {
        for (const key of sample) {
          const k = parseKubernetesKey(key)!;
          const found = findObject(db, k.resource, k.namespace, k.name);
          assert.ok(found, `${key} not found by resource ${k.resource} ${where}`);
          assert.equal(found.key, key);
          assert.ok(
            found.value.equals(shot.truth.keys.get(Buffer.from(key).toString("latin1"))!.value),
            `${key}: wrong value through --resource ${where}`,
          );
        }
      });
    });
  }

  test("diff A B lists exactly the keys whose values or revisions changed between etcd's dumps", async () => {
    const a = shots.get("k8s-5000-a")!;
    const b = shots.get("k8s-5000-b")!;
    const want = expectedChanges(a.truth, b.truth);
    assert.ok(want.length > 500, `only ${want.length} changes: the shape does not exercise diff`);
    const whole = diffSnapshots(await BoltDb.open(a.path), await BoltDb.open(b.path));
    const fa = BoltDb.openFile(a.path);
    const fb = BoltDb.openFile(b.path);
    let paged: ReturnType<typeof diffSnapshots>;
    try {
      paged = diffSnapshots(fa, fb);
    } finally {
      fa.close();
      fb.close();
    }
    for (const d of [whole, paged]) {
      assert.deepEqual(
        d.changes.map((c) => ({ key: c.key, change: c.change })),
        want,
        where,
      );
    }
  });

  test("the paged etcd dump (used by bench/differential.ts on large snapshots) equals the whole one", async () => {
    const shot = shots.get("k8s-5000-a")!;
    const paged = await snapshotTruth(shot.path, { pageSize: 700 });
    const cmp = compareDumps(shot.truth, paged);
    assert.equal(cmp.differing, 0, cmp.lines.join("\n"));
    assert.equal(paged.keys.size, shot.truth.keys.size);
  });

  test("a snapshot and its defragmented copy hold the same content: diff is empty", async () => {
    const x = BoltDb.openFile(shots.get("k8s-5000-b")!.path);
    const y = BoltDb.openFile(shots.get("k8s-5000-b-defrag")!.path);
    try {
      assert.deepEqual(diffSnapshots(x, y).changes, [], where);
    } finally {
      x.close();
      y.close();
    }
    const truthA: Dump = shots.get("k8s-5000-b")!.truth;
    assert.deepEqual(expectedChanges(truthA, shots.get("k8s-5000-b-defrag")!.truth), []);
  });
});
