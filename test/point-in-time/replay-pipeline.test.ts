import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { GuardCompare, ReplayClient } from "../../src/point-in-time/replay-client.ts";
import { ReplayPipeline } from "../../src/point-in-time/replay-pipeline.ts";
import { type DecodedEvent, EVENT_DELETE, EVENT_PUT } from "../../src/source/etcd-watch.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

/**
 * A stand-in for etcd's Txn with compares, which takes the requests in flight in a seeded random order (the
 * real etcd reorders concurrent requests too, just less predictably). It evaluates guards as etcd does: a
 * missing key compares as version 0 and mod revision 0.
 */
class ReorderingKv {
  revision: number;
  readonly mods = new Map<string, number>();
  /** Original revision of each applied Txn, in the order applied. */
  readonly applied: number[] = [];
  private readonly queue: {
    events: DecodedEvent[];
    guard: GuardCompare[];
    done: (r: { applied: boolean; revision: number }) => void;
  }[] = [];
  private readonly rng: SeededRandom;
  private scheduled = false;

  constructor(rng: SeededRandom, revision: number, keys: Map<string, number>) {
    this.rng = rng;
    this.revision = revision;
    for (const [k, v] of keys) this.mods.set(k, v);
  }

  applyRevision(
    events: DecodedEvent[],
    guard: GuardCompare[] = [],
  ): Promise<{ applied: boolean; revision: number }> {
    return new Promise((done) => {
      this.queue.push({ events, guard, done });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.pump());
      }
    });
  }

  private pump(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const [call] = this.queue.splice(this.rng.int(0, this.queue.length - 1), 1);
      const holds = call!.guard.every((c) => {
        const mod = this.mods.get(c.key.toString("latin1")) ?? 0;
        return "absent" in c ? mod === 0 : mod === c.modRevision;
      });
      if (!holds) {
        call!.done({ applied: false, revision: this.revision });
        continue;
      }
      this.revision++;
      for (const e of call!.events) {
        if (e.type === EVENT_PUT) this.mods.set(e.key.toString("latin1"), this.revision);
        else this.mods.delete(e.key.toString("latin1"));
      }
      this.applied.push(call!.events[0]!.revision);
      call!.done({ applied: true, revision: this.revision });
    }
  }
}

function history(
  rng: SeededRandom,
  start: number,
  count: number,
  live: Set<string>,
): { revision: number; events: DecodedEvent[] }[] {
  const out: { revision: number; events: DecodedEvent[] }[] = [];
  for (let revision = start + 1; revision <= start + count; revision++) {
    const keys = new Set<string>();
    const events: DecodedEvent[] = [];
    // Runs of delete-only revisions (lease expiries, garbage collection) as well as puts.
    const deleteOnly = live.size > 0 && rng.next() < 0.4;
    for (let i = rng.int(1, 4); i > 0; i--) {
      const existing = [...live];
      const del = existing.length > 0 && (deleteOnly || rng.next() < 0.3);
      const key = del ? rng.pick(existing) : `k${rng.int(0, 30)}`;
      if (keys.has(key)) continue;
      keys.add(key);
      if (del) live.delete(key);
      else live.add(key);
      events.push({
        type: del ? EVENT_DELETE : EVENT_PUT,
        key: Buffer.from(key, "latin1"),
        revision,
        createRevision: 0,
        version: 0,
        value: Buffer.alloc(0),
        lease: 0n,
      });
    }
    if (events.length === 0) {
      revision--;
      continue;
    }
    out.push({ revision, events });
  }
  return out;
}

describe("guarded replay pipeline", () => {
  test("whatever order the server takes concurrent Txns in, each applies exactly at its original revision (seeded)", async () => {
    const seed = testSeed(Date.now() % 1_000_000);
    for (const window of [1, 2, 8, 64]) {
      const rng = new SeededRandom(seed + window);
      const live = new Set<string>(["k1", "k2", "k3"]);
      const kv = new ReorderingKv(
        rng,
        10,
        new Map([
          ["k1", 4],
          ["k2", 7],
          ["k3", 10],
        ]),
      );
      const revisions = history(rng, 10, 3000, live);
      const pipeline = new ReplayPipeline(kv as unknown as ReplayClient, window);
      for (const r of revisions) await pipeline.add(r.revision, r.events);
      await pipeline.flush();
      const where = `seed ${seed}, window ${window} (rerun with ETCD_BACKUP_TEST_SEED=${seed})`;
      assert.equal(kv.revision, revisions.at(-1)!.revision, where);
      assert.deepEqual(
        kv.applied,
        revisions.map((r) => r.revision),
        where,
      );
      assert.deepEqual([...kv.mods.keys()].sort(), [...live].sort(), where);
      if (window > 1) assert.ok(pipeline.resent > 0, `${where}: the stand-in never reordered`);
    }
  });
});
