import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, beforeEach, describe, test } from "node:test";
import { keepHeld, type PrunedBackup, pruneBackups, readHolds } from "../../src/catalog/prune.ts";
import { withOverrides } from "../../src/store/delegate.ts";
import { LocalStore } from "../../src/store/local.ts";
import { NO_RETENTION, NotFoundError, type Retention, type Store } from "../../src/store/store.ts";
import { age, fakeSnapshot, plantBackup } from "./fixtures.ts";

/**
 * Prune's plan around what the store holds (object lock, legal hold): a held backup is kept with the reason, a
 * dry run and a real run plan alike, and the store is never asked to delete a held key.
 */

const snap = fakeSnapshot(5);
const DAY = 86_400_000;
const now = new Date();
const daysAgo = (n: number) => new Date(Math.floor((now.getTime() - n * DAY) / 1000) * 1000);
const inDays = (n: number) => new Date(now.getTime() + n * DAY);

/** A directory store whose objects carry the retentions in `locks`, recording every delete asked of it. */
function lockingStore(inner: LocalStore, locks: Map<string, Retention | Error>, deletes: string[]): Store {
  return withOverrides(inner, {
    async retention(key) {
      const lock = locks.get(key);
      if (lock instanceof Error) throw lock;
      if (!(await inner.stat(key))) throw new NotFoundError(key, inner.location);
      return lock ?? NO_RETENTION;
    },
    async delete(key) {
      deletes.push(key);
      const lock = locks.get(key);
      if (
        lock &&
        !(lock instanceof Error) &&
        (lock.legalHold || (lock.retainUntil?.getTime() ?? 0) > Date.now())
      )
        throw new Error(`${key} is locked`);
      await inner.delete(key);
    },
  });
}

describe("prune around object locks", () => {
  const roots: string[] = [];
  let inner: LocalStore;
  let keys: string[];

  beforeEach(async () => {
    inner = new LocalStore(await mkdtemp(join(tmpdir(), "etcd-backup-prune-locks-")));
    roots.push(inner.root);
    keys = [];
    for (let d = 1; d <= 4; d++)
      keys.push(await plantBackup(inner, snap, { cluster: "prod", time: daysAgo(d) }));
  });

  after(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });

  test("a held backup is kept with the reason; dry run and real run agree; no held key is ever deleted", async () => {
    const [, , third, fourth] = keys as [string, string, string, string];
    const locks = new Map<string, Retention | Error>([
      [third, { mode: "compliance", retainUntil: inDays(34), legalHold: false }],
      [`${third}.json`, { mode: "compliance", retainUntil: inDays(34), legalHold: false }],
      // Only the manifest held: the pair stays, so an object never goes while its manifest cannot.
      [`${fourth}.json`, { legalHold: true }],
    ]);
    const deletes: string[] = [];
    const store = lockingStore(inner, locks, deletes);
    const plan = (r: Awaited<ReturnType<typeof pruneBackups>>) =>
      r.backups.map((b) => [b.entry.key, b.action, b.reasons.map((x) => x.hold ?? x.rule).join("+")]);
    const dry = await pruneBackups(store, { last: 1 }, { dryRun: true, now });
    const day = inDays(34).toISOString().slice(0, 10);
    assert.deepEqual(plan(dry), [
      [keys[0], "keep", "newest+last"],
      [keys[1], "delete", ""],
      [third, "keep", `object lock compliance until ${day}`],
      [fourth, "keep", "legal hold"],
    ]);
    assert.deepEqual(deletes, []);
    const real = await pruneBackups(store, { last: 1 }, { now });
    assert.deepEqual(plan(real), plan(dry));
    assert.equal(real.freedBytes, dry.freedBytes);
    assert.deepEqual(real.failures, []);
    assert.deepEqual(deletes, [keys[1], `${keys[1]}.json`]);
  });

  test("a retention that cannot be read keeps the backup, with why", async () => {
    const locks = new Map<string, Retention | Error>([[keys[3]!, new Error("access denied")]]);
    const deletes: string[] = [];
    const report = await pruneBackups(lockingStore(inner, locks, deletes), { last: 1 }, { now });
    const last = report.backups.find((b) => b.entry.key === keys[3])!;
    assert.equal(last.action, "keep");
    assert.match(last.reasons[0]?.hold ?? "", /^retention unreadable: access denied/);
    assert.ok(!deletes.includes(keys[3]!));
  });

  test("an expired lock no longer holds: the backup goes", async () => {
    const locks = new Map<string, Retention | Error>([
      [keys[3]!, { mode: "governance", retainUntil: new Date(now.getTime() - 1000), legalHold: false }],
    ]);
    const deletes: string[] = [];
    const report = await pruneBackups(lockingStore(inner, locks, deletes), { last: 1 }, { now });
    assert.equal(report.backups.find((b) => b.entry.key === keys[3])?.action, "delete");
    assert.ok(deletes.includes(keys[3]!));
  });

  test("an old incomplete leftover that is held stays, with the hold shown", async () => {
    const left = await plantBackup(inner, snap, {
      cluster: "prod",
      time: daysAgo(9),
      manifest: false,
      pending: true,
    });
    await age(inner, left, daysAgo(3));
    await age(inner, `${left}.pending`, daysAgo(3));
    const locks = new Map<string, Retention | Error>([[left, { legalHold: true }]]);
    const deletes: string[] = [];
    const report = await pruneBackups(lockingStore(inner, locks, deletes), { last: 4 }, { now });
    const leftover = report.leftovers.find((l) => l.entry.key === left)!;
    assert.deepEqual([leftover.action, leftover.hold], ["keep", "legal hold"]);
    assert.deepEqual(deletes, []);
  });

  test("a directory store answers no retention; the plan is the policy's", async () => {
    assert.deepEqual(await inner.retention(keys[0]!), NO_RETENTION);
    await assert.rejects(inner.retention("prod/missing.snap"), NotFoundError);
    const holds = await readHolds(inner, keys, now);
    assert.equal(holds.size, 0);
  });

  test("keepHeld is pure: only planned deletions with a held key change", () => {
    const entry = (key: string) =>
      ({
        key,
        cluster: "c",
        kind: "snapshot",
        time: now,
        state: "complete",
        object: { key, size: 1, lastModified: now },
      }) as PrunedBackup["entry"];
    const backups: PrunedBackup[] = [
      { entry: entry("a"), action: "keep", reasons: [{ rule: "newest" }] },
      { entry: entry("b"), action: "delete", reasons: [] },
      { entry: entry("c"), action: "delete", reasons: [] },
    ];
    keepHeld(
      backups,
      new Map([
        ["a", "legal hold"],
        ["c", "object lock governance until 2027-01-01"],
      ]),
    );
    assert.deepEqual(
      backups.map((b) => [b.entry.key, b.action, b.reasons]),
      [
        ["a", "keep", [{ rule: "newest" }]],
        ["b", "delete", []],
        ["c", "keep", [{ rule: "locked", hold: "object lock governance until 2027-01-01" }]],
      ],
    );
  });
});
