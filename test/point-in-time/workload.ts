/**
 * A seeded writer for the point-in-time tests: puts, overwrites, single and range deletes, multi-key Txns that
 * mix puts and deletes, keys attached to leases (some of which expire on their own while it runs) and lease
 * revokes, against a real etcd. It pauses now and then and records quiet checkpoints: a time at which etcd's
 * revision is known and did not move for a while, the (time, revision) pairs that `restore --at` must map.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { MessageWriter } from "../../src/protobuf/wire.ts";
import { type EtcdKv, headerRevision, putOp, txnRequest, unary } from "../fixtures/etcd-kv.ts";
import type { SeededRandom } from "../fixtures/seeded-random.ts";

export interface Checkpoint {
  /** etcd's revision during the whole quiet pause. */
  revision: number;
  /** The middle of the pause. */
  time: Date;
}

export interface WorkloadResult {
  operations: number;
  checkpoints: Checkpoint[];
  lastRevision: number;
}

const NAMESPACES = ["default", "kube-system", "team-a", "team-b"];
const RESOURCES = ["pods", "configmaps", "secrets", "events"];

function deleteOp(key: string): Buffer {
  return new MessageWriter().message(3, new MessageWriter().bytes(1, key).finish()).finish();
}

/** etcd's current revision. */
export async function currentRevision(kv: EtcdKv): Promise<number> {
  const req = new MessageWriter()
    .bytes(1, Buffer.from([0]))
    .bytes(2, Buffer.from([0]))
    .varint(3, 1)
    .finish();
  return Number(headerRevision(await unary(kv.client, "/etcdserverpb.KV/Range", req)));
}

function randomKey(rng: SeededRandom): string {
  return `/registry/${rng.pick(RESOURCES)}/${rng.pick(NAMESPACES)}/obj-${rng.int(0, 60)}`;
}

function randomValue(rng: SeededRandom): Buffer {
  return rng.bytes(rng.int(1, 2048));
}

/**
 * Writes for `durationMs`, about `rate` operations a second, with a quiet checkpoint every `checkpointEveryMs`
 * (a 1 s pause). `during` runs once, halfway (a full backup, for example), while writes go on.
 */
export async function runWorkload(
  kv: EtcdKv,
  rng: SeededRandom,
  options: { durationMs: number; rate?: number; checkpointEveryMs?: number; during?: () => Promise<void> },
): Promise<WorkloadResult> {
  const end = Date.now() + options.durationMs;
  const rate = options.rate ?? 60;
  const checkpointEvery = options.checkpointEveryMs ?? 4000;
  let nextCheckpoint = Date.now() + checkpointEvery;
  const live = new Set<string>();
  const leases: { id: bigint; expires: number }[] = [];
  const checkpoints: Checkpoint[] = [];
  let operations = 0;
  let during: Promise<void> | undefined;
  let duringStarted = false;
  const halfway = Date.now() + options.durationMs / 2;
  while (Date.now() < end) {
    if (options.during && !duringStarted && Date.now() >= halfway) {
      duringStarted = true;
      during = options.during();
    }
    if (Date.now() >= nextCheckpoint) {
      await sleep(100);
      const before = await currentRevision(kv);
      const t0 = Date.now();
      await sleep(1000);
      const t1 = Date.now();
      const after = await currentRevision(kv);
      // A lease that expired during the pause moves the revision: that pause is no checkpoint.
      if (before === after) checkpoints.push({ revision: before, time: new Date((t0 + t1) / 2) });
      nextCheckpoint = Date.now() + checkpointEvery;
    }
    const now = Date.now();
    for (let i = leases.length - 1; i >= 0; i--) if (leases[i]!.expires < now) leases.splice(i, 1);
    const dice = rng.next();
    if (dice < 0.35) {
      const key = randomKey(rng);
      await kv.txn([{ key, value: randomValue(rng) }]);
      live.add(key);
    } else if (dice < 0.5) {
      // A multi-key Txn: distinct keys, puts and deletes mixed (one revision, several events).
      const keys = new Set<string>();
      const n = rng.int(2, 5);
      while (keys.size < n) keys.add(randomKey(rng));
      const ops: Buffer[] = [];
      for (const key of keys) {
        if (live.has(key) && rng.next() < 0.4) {
          ops.push(deleteOp(key));
          live.delete(key);
        } else {
          ops.push(putOp({ key, value: randomValue(rng) }));
          live.add(key);
        }
      }
      await unary(kv.client, "/etcdserverpb.KV/Txn", txnRequest(ops));
    } else if (dice < 0.62) {
      const key = rng.pick([...live]);
      if (key) {
        await kv.delete(key);
        live.delete(key);
      }
    } else if (dice < 0.65) {
      const prefix = `/registry/${rng.pick(RESOURCES)}/${rng.pick(NAMESPACES)}/obj-${rng.int(0, 5)}`;
      await kv.delete(prefix, `${prefix}\xff`);
      for (const k of [...live]) if (k.startsWith(prefix)) live.delete(k);
    } else if (dice < 0.85) {
      if (leases.length < 3) {
        const ttl = rng.int(10, 20);
        leases.push({ id: await kv.leaseGrant(ttl), expires: Date.now() + ttl * 1000 - 1500 });
      }
      const lease = rng.pick(leases);
      const key = `/registry/leases/${rng.pick(NAMESPACES)}/holder-${rng.int(0, 20)}`;
      await kv.txn([{ key, value: randomValue(rng), lease: lease.id }]);
    } else if (dice < 0.87) {
      const lease = leases.length > 0 ? leases.splice(rng.int(0, leases.length - 1), 1)[0] : undefined;
      if (lease) {
        await unary(
          kv.client,
          "/etcdserverpb.Lease/LeaseRevoke",
          new MessageWriter().varint(1, lease.id).finish(),
        ).catch(() => {}); // expired on its own already
      }
    } else {
      const key = rng.pick([...live]) ?? randomKey(rng);
      await kv.txn([{ key, value: randomValue(rng) }]);
      live.add(key);
    }
    operations++;
    await sleep(rng.int(0, Math.round(2000 / rate)));
  }
  await during;
  return { operations, checkpoints, lastRevision: await currentRevision(kv) };
}
