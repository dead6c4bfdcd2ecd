import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, beforeEach, describe, test } from "node:test";
import { listBackups } from "../../src/catalog/catalog.ts";
import { pruneBackups } from "../../src/catalog/prune.ts";
import { LocalStore } from "../../src/store/local.ts";
import type { Store } from "../../src/store/store.ts";
import { age, fakeSnapshot, plantBackup } from "./fixtures.ts";

const snap = fakeSnapshot(3);
const DAY = 86_400_000;
const now = new Date();
const daysAgo = (n: number) => new Date(Math.floor((now.getTime() - n * DAY) / 1000) * 1000);

/** Every file in the store directory, sorted, for exact before/after comparisons. */
async function files(store: LocalStore): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(join(store.root, rel), { withFileTypes: true })) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(key);
      else out.push(key);
    }
  };
  await walk("");
  return out.sort();
}

/** The same store, but deleting the keys in `failing` fails as a flaky backend would. */
function failingDeletes(inner: LocalStore, failing: (key: string) => boolean): Store {
  return Object.assign(Object.create(inner) as LocalStore, {
    async delete(key: string) {
      if (failing(key)) throw new Error("access denied", { cause: new Error(`delete ${key}`) });
      return inner.delete(key);
    },
  });
}

describe("pruneBackups", () => {
  const roots: string[] = [];
  let store: LocalStore;
  let keys: Record<string, string>;

  beforeEach(async () => {
    store = new LocalStore(await mkdtemp(join(tmpdir(), "etcd-backup-prune-")));
    roots.push(store.root);
    keys = {};
    for (let d = 1; d <= 5; d++)
      keys[`prod${d}`] = await plantBackup(store, snap, { cluster: "prod", time: daysAgo(d) });
    keys.talos = await plantBackup(store, snap, {
      cluster: "prod",
      time: daysAgo(6),
      key: `prod/prod-${daysAgo(6).toISOString().slice(0, 19)}+00:00.snap.age`,
      manifest: false,
    });
    keys.invalid = await plantBackup(store, snap, {
      cluster: "prod",
      time: daysAgo(30),
      manifest: JSON.stringify({ format: 99 }),
    });
    keys.other = await plantBackup(store, snap, { cluster: "other", time: daysAgo(40) });
    keys.other2 = await plantBackup(store, snap, { cluster: "other", time: daysAgo(41) });
    // Leftovers: old ones (files aged two days) and fresh ones (an upload may be running).
    keys.oldIncomplete = await plantBackup(store, snap, {
      cluster: "prod",
      time: daysAgo(3.5),
      manifest: false,
      pending: true,
    });
    await age(store, keys.oldIncomplete, daysAgo(2));
    await age(store, `${keys.oldIncomplete}.pending`, daysAgo(2));
    keys.freshMarker = await plantBackup(store, snap, {
      cluster: "prod",
      time: daysAgo(0.01),
      manifest: false,
      pending: true,
      noObject: true,
    });
    keys.oldOrphan = await plantBackup(store, snap, { cluster: "prod", time: daysAgo(20), noObject: true });
    await age(store, `${keys.oldOrphan}.json`, daysAgo(2));
    keys.oldTemp = `.etcd-backup-tmp-prod-${daysAgo(9).toISOString().slice(0, 19)}Z.snap.0123456789ab`;
    await writeFile(join(store.root, keys.oldTemp), "partial");
    await age(store, keys.oldTemp, daysAgo(2));
    keys.freshTemp = `.etcd-backup-tmp-prod-${now.toISOString().slice(0, 19)}Z.snap.json.ba9876543210`;
    await writeFile(join(store.root, keys.freshTemp), "{");
    // The newest complete backup still has the marker whose removal failed after its save.
    await store.put(`${keys.prod1}.pending`, Readable.from([Buffer.from("{}")]));
    await age(store, `${keys.prod1}.pending`, daysAgo(1));
  });

  after(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });

  test("dry run reports every decision and deletes nothing", async () => {
    const before = await files(store);
    const report = await pruneBackups(store, { last: 2 }, { dryRun: true, now });
    assert.deepEqual(await files(store), before);
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.backups.map((b) => `${b.action} ${b.entry.key} ${b.reasons.map((r) => r.rule).join("+")}`),
      [
        `keep ${keys.prod1} newest+last`,
        `keep ${keys.prod2} last`,
        `delete ${keys.prod3} `,
        `delete ${keys.prod4} `,
        `delete ${keys.prod5} `,
        `delete ${keys.talos} `,
        `keep ${keys.other} newest+last`,
        `keep ${keys.other2} last`,
      ],
    );
    assert.deepEqual(
      report.invalid.map((e) => e.key),
      [keys.invalid],
    );
    assert.deepEqual(
      report.leftovers.map((l) => `${l.action} ${l.keys.join(",")}`).sort(),
      [
        `delete ${keys.oldIncomplete},${keys.oldIncomplete}.pending`,
        `delete ${keys.oldOrphan}.json`,
        `delete ${keys.oldTemp}`,
        `delete ${keys.prod1}.pending`,
        `keep ${keys.freshMarker}.pending`,
        `keep ${keys.freshTemp}`,
      ].sort(),
    );
    assert.equal(report.failures.length, 0);
    assert.ok(report.freedBytes > 4 * snap.length, "counts the objects that would go");
  });

  test("a real run deletes exactly the planned keys; a second run deletes nothing more", async () => {
    const before = await files(store);
    const report = await pruneBackups(store, { last: 2 }, { now });
    assert.deepEqual(report.failures, []);
    const gone = [
      keys.prod3,
      `${keys.prod3}.json`,
      keys.prod4,
      `${keys.prod4}.json`,
      keys.prod5,
      `${keys.prod5}.json`,
      keys.talos,
      keys.oldIncomplete,
      `${keys.oldIncomplete}.pending`,
      `${keys.oldOrphan}.json`,
      keys.oldTemp,
      `${keys.prod1}.pending`,
    ];
    assert.deepEqual(
      await files(store),
      before.filter((f) => !gone.includes(f)),
    );
    assert.ok(report.backups.filter((b) => b.action === "delete").every((b) => b.result === "deleted"));
    const again = await pruneBackups(store, { last: 2 }, { now });
    assert.deepEqual(
      again.backups.filter((b) => b.action === "delete"),
      [],
    );
    assert.deepEqual(
      again.leftovers.filter((l) => l.action === "delete"),
      [],
    );
    assert.deepEqual(
      await files(store),
      before.filter((f) => !gone.includes(f)),
    );
  });

  test("--cluster limits both retention and cleanup to that cluster", async () => {
    const report = await pruneBackups(store, { last: 1 }, { now, cluster: "other" });
    assert.deepEqual(
      report.backups.map((b) => `${b.action} ${b.entry.key}`),
      [`keep ${keys.other}`, `delete ${keys.other2}`],
    );
    assert.deepEqual(report.leftovers, []);
    assert.deepEqual(report.invalid, []);
    const left = await files(store);
    assert.ok(!left.includes(keys.other2!) && left.includes(keys.prod5!) && left.includes(keys.oldTemp!));
  });

  test("a failed object deletion keeps its manifest, is reported, and the rest goes on", async () => {
    const flaky = failingDeletes(store, (k) => k === keys.prod4 || k === keys.oldIncomplete);
    const report = await pruneBackups(flaky, { last: 2 }, { now });
    assert.deepEqual(report.failures.map((f) => f.key).sort(), [keys.prod4, keys.oldIncomplete].sort());
    assert.match(report.failures[0]!.error, /^access denied: delete /);
    const left = await files(store);
    // prod4 is still a whole backup, the incomplete one still has its marker (it must not turn "unmanaged").
    for (const k of [keys.prod4, `${keys.prod4}.json`, keys.oldIncomplete, `${keys.oldIncomplete}.pending`]) {
      assert.ok(left.includes(k!), `${k} kept`);
    }
    for (const k of [keys.prod3, `${keys.prod3}.json`, keys.prod5, keys.talos, keys.oldTemp]) {
      assert.ok(!left.includes(k!), `${k} deleted`);
    }
    const states = new Map((await listBackups(store)).map((e) => [e.key, e.state]));
    assert.equal(states.get(keys.prod4!), "complete");
    assert.equal(states.get(keys.oldIncomplete!), "incomplete");
    assert.equal(report.backups.find((b) => b.entry.key === keys.prod4)?.result, "failed");
  });

  test("when only the manifest deletion fails, the orphan manifest is cleaned by the next run", async () => {
    const flaky = failingDeletes(store, (k) => k === `${keys.prod3}.json`);
    const first = await pruneBackups(flaky, { last: 2 }, { now });
    assert.deepEqual(
      first.failures.map((f) => f.key),
      [`${keys.prod3}.json`],
    );
    const orphan = (await listBackups(store)).find((e) => e.key === keys.prod3);
    assert.equal(orphan?.state, "incomplete");
    assert.match(orphan?.problem ?? "", /manifest without its object/);
    // The manifest is days old, so the grace period is over.
    await age(store, `${keys.prod3}.json`, daysAgo(2));
    const second = await pruneBackups(store, { last: 2 }, { now });
    assert.deepEqual(second.failures, []);
    assert.ok(!(await files(store)).includes(`${keys.prod3}.json`));
  });

  test("the grace period is a parameter; no leftover younger than it is touched", async () => {
    const report = await pruneBackups(store, { last: 100 }, { now, graceMs: 3 * DAY, dryRun: true });
    assert.deepEqual(
      report.leftovers.filter((l) => l.action === "delete"),
      [],
    );
    // Measured from a `now` after the fresh files were written: with no grace at all they go too.
    const zero = await pruneBackups(
      store,
      { last: 100 },
      { now: new Date(Date.now() + 1000), graceMs: 0, dryRun: true },
    );
    assert.equal(zero.leftovers.filter((l) => l.action === "delete").length, 6);
  });

  test("an aborted signal deletes nothing", async () => {
    const before = await files(store);
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(pruneBackups(store, { last: 1 }, { now, signal: controller.signal }), /stop/);
    assert.deepEqual(await files(store), before);
  });
});
