import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readLogCatalog, recoverableRanges } from "../../src/point-in-time/catalog.ts";
import { chainKey } from "../../src/point-in-time/names.ts";
import { pruneLog } from "../../src/point-in-time/prune-log.ts";
import { withOverrides } from "../../src/store/delegate.ts";
import type { LocalStore } from "../../src/store/local.ts";
import type { ObjectInfo } from "../../src/store/store.ts";
import { type PlantedChain, plantBackupAt, T0, withPlantedLog } from "../fixtures/planted-log.ts";

async function listAll(store: LocalStore, prefix: string | undefined): Promise<ObjectInfo[]> {
  const objects: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) objects.push(o);
  return objects;
}

/** Chain 10 with segments 11-20, 21-30 and 31-40, chain 50 with 51-60 and 61-70; each test plants its backups. */
const TWO_CHAINS: PlantedChain[] = [
  {
    base: 10,
    segments: [
      [11, 20],
      [21, 30],
      [31, 40],
    ],
  },
  {
    base: 50,
    segments: [
      [51, 60],
      [61, 70],
    ],
  },
];

describe("log retention", () => {
  test("keeps what a restorable point needs: a cut before the earliest full backup, whole chains without one", async () => {
    await withPlantedLog("prune-log", TWO_CHAINS, async (store) => {
      const b10 = await plantBackupAt(store, 10);
      const b25 = await plantBackupAt(store, 25);
      await plantBackupAt(store, 50);
      await plantBackupAt(store, 65);

      // Every full backup there: nothing to remove.
      let r = await pruneLog(store);
      assert.deepEqual(r.removed, []);
      assert.equal(r.keptSegments, 5);

      // A dry run of prune counts the backups it would delete as gone: the same plan as after deleting them.
      const planned = await pruneLog(store, { dryRun: true, goneBackups: [b10] });
      assert.equal(planned.removed.length, 2);
      assert.deepEqual(
        planned.chains.map((c) => [
          c.base,
          c.action,
          c.kept && { from: c.kept.from, to: c.kept.to },
          c.keptSegments,
          c.removedSegments,
        ]),
        [
          [10, "cut", { from: 25, to: 40 }, 2, 1],
          [50, "keep", { from: 50, to: 70 }, 2, 0],
        ],
      );

      // The chain's own base pruned: the segment before the next full backup (25) goes, the cut is recorded.
      await store.delete(b10);
      await store.delete(`${b10}.json`);
      // Before the log is pruned (a prune stopped between the two), the catalog already restores from 25 only.
      const stale = (await readLogCatalog(store))[0]!;
      assert.equal(stale.chains[0]!.start, 25);
      assert.deepEqual(
        recoverableRanges(stale).map((r) => [r.from, r.to]),
        [
          [25, 40],
          [50, 70],
        ],
      );
      const dry = await pruneLog(store, { dryRun: true });
      assert.deepEqual(
        dry.removed.map((i) => i.key.split("/").pop()),
        ["0000000000000011-0000000000000020.seg.zst", "0000000000000011-0000000000000020.seg.zst.json"],
      );
      assert.equal(
        (await readLogCatalog(store))[0]!.chains[0]!.segments.length,
        3,
        "dry run removed something",
      );
      r = await pruneLog(store);
      assert.equal(r.removed.length, 2);
      assert.deepEqual(r.failed, []);
      let [log] = await readLogCatalog(store);
      const first = log!.chains[0]!;
      assert.equal(first.start, 25);
      assert.equal(first.reach, 40);
      assert.deepEqual(first.holes, [], "a pruned prefix is not a hole");
      assert.deepEqual(
        recoverableRanges(log!).map((x) => [x.from, x.to]),
        [
          [25, 40],
          [50, 70],
        ],
      );

      // No full backup left in the older chain: it goes whole; the newest chain stays.
      await store.delete(b25);
      await store.delete(`${b25}.json`);
      r = await pruneLog(store);
      [log] = await readLogCatalog(store);
      assert.deepEqual(
        log!.chains.map((c) => c.base),
        [50],
      );
      assert.ok(r.removed.some((i) => i.key === chainKey("prod", 10)));
      assert.equal(log!.chains[0]!.segments.length, 2);
    });
  });

  test("a log retention window: continuous points only within it, older points are the full backups alone", async () => {
    await withPlantedLog("prune-log-window", TWO_CHAINS, async (store) => {
      // Times are T0 + revision seconds: chain 10 (backups 10, 25) ends at 40 s, chain 50 (backups 50, 65) at 70 s.
      for (const r of [10, 25, 50, 65]) await plantBackupAt(store, r);
      // Window starting at 66 s: chain 10 ended before it (goes whole, its backups stay); chain 50 starts over at
      // its newest backup before 66 s, revision 65, so segment 51-60 goes and 61-70 stays.
      const r = await pruneLog(store, { withinMs: 4_000, now: new Date(T0 + 70_000) });
      assert.deepEqual(
        r.chains.map((c) => [
          c.base,
          c.action,
          c.kept ? { from: c.kept.from, to: c.kept.to } : null,
          c.keptSegments,
          c.removedSegments,
        ]),
        [
          [10, "remove", null, 0, 3],
          [50, "cut", { from: 65, to: 70 }, 1, 1],
        ],
      );
      assert.deepEqual(r.failed, []);
      const [log] = await readLogCatalog(store);
      assert.deepEqual(
        recoverableRanges(log!).map((x) => [x.from, x.to]),
        [[65, 70]],
      );
      // A window that covers everything changes nothing.
      const all = await pruneLog(store, { withinMs: 3_600_000, now: new Date(T0 + 70_000) });
      assert.deepEqual(all.removed, []);
    });
  });

  test("a catalog read while prune removes a listed segment starts over and sees one consistent state", async () => {
    const chain10: PlantedChain = {
      base: 10,
      segments: [
        [11, 20],
        [21, 30],
      ],
    };
    await withPlantedLog("prune-log-race", [chain10], async (local) => {
      const listed = await listAll(local, "");
      const victim = listed.find((o) =>
        o.key.endsWith("0000000000000011-0000000000000020.seg.zst.json"),
      )!.key;
      // The prune runs between our listing and our reads: the first listing still names what it removed.
      let lists = 0;
      const store = withOverrides(local, {
        list: async function* (prefix) {
          const objects = await listAll(local, prefix);
          if (lists++ === 0) {
            await local.delete(victim);
            await local.delete(victim.slice(0, -".json".length));
          }
          yield* objects;
        },
      });
      const [log] = await readLogCatalog(store);
      assert.ok(lists >= 2, "the read did not list again");
      assert.deepEqual(
        log!.chains[0]!.segments.map((s) => s.manifest.firstRevision),
        [21],
        "the second listing's state",
      );
      assert.deepEqual(log!.chains[0]!.unclosed, []);
    });
  });
});
