/**
 * prune and the journal (`<key>.rekey`) and rewritten copies (`<key>.rekey-new.<run>`) of rekeys, each state
 * planted in a directory store (headers are stand-ins: the journal only names their sha256 and size): within
 * the grace period nothing is touched and the plan says "in progress" (and a backup retention would delete is
 * kept); after it (the clock prune takes, moved forward) an object already rewritten is finished, one still the
 * original is undone, copies without a journal are removed, those of a backup prune deletes go with it, those of
 * a backup that is gone are removed, and a journal nobody can trust is left for a person. The real rekey killed
 * at each step is test/catalog/prune-rekey-crash.test.ts.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer, text } from "node:stream/consumers";
import { after, beforeEach, describe, test } from "node:test";
import { listBackups } from "../../src/catalog/catalog.ts";
import { type Manifest, parseManifest, serializeManifest } from "../../src/catalog/manifest.ts";
import { backupKey } from "../../src/catalog/names.ts";
import { pruneBackups } from "../../src/catalog/prune.ts";
import {
  headerDigest,
  journalKey,
  type RekeyJournal,
  recoverInterruptedRekey,
  stagingKey,
} from "../../src/catalog/rekey-journal.ts";
import { LocalStore } from "../../src/store/local.ts";
import { sampleManifest } from "./fixtures.ts";

const HOUR = 3_600_000;
const GRACE = 24 * HOUR;
const RUN = "0123456789abcdef";

describe("prune and what a rekey left", () => {
  const root = mkdtempSync(join(tmpdir(), "prune-rekey-"));
  let store: LocalStore;
  let dir: string;
  const payload = randomBytes(4000);
  const oldHead = Buffer.from("age-encryption.org/v1\n-> X25519 old\nAAAA\n--- mac\n");
  const newHead = Buffer.from("age-encryption.org/v1\n-> X25519 new, and a longer one\nBBBB\n--- mac\n");
  const put = (k: string, b: Buffer | string) => store.put(k, Readable.from([Buffer.from(b)]));
  /** Sets a file's time, so that "now" and "after the grace period" are only the clock prune is given. */
  const age = (k: string, when: Date) => utimesSync(join(dir, k), when, when);
  // A minute after the files are written: within the grace period, after every write of the test.
  const now = new Date(Date.now() + 60_000);

  /** A backup of `cluster` at `time`, rekey-able from oldHead to newHead, with journal and copy as asked. */
  async function plant(
    cluster: string,
    time: Date,
    state: { object: "old" | "new"; journal: boolean; staging: boolean },
  ): Promise<{ key: string; oldManifest: Manifest; newManifest: Manifest }> {
    const key = backupKey({ cluster, time, compression: "none", encrypted: true });
    const base = sampleManifest(cluster, time, randomBytes(64), "none", 0);
    const describe = (head: Buffer, who: string): Manifest => {
      const body = Buffer.concat([head, payload]);
      return {
        ...base,
        sizes: { ...base.sizes, stored: body.length },
        object: { size: body.length, sha256: createHash("sha256").update(body).digest("hex") },
        encryption: { kind: "age", recipients: [{ kind: "X25519", publicKey: who }] },
      };
    };
    const oldManifest = describe(oldHead, "age1old");
    const newManifest = describe(newHead, "age1new");
    await put(key, Buffer.concat([state.object === "old" ? oldHead : newHead, payload]));
    await put(`${key}.json`, serializeManifest(oldManifest));
    if (state.journal) {
      const journal: RekeyJournal = {
        format: 1,
        kind: "rekey",
        run: RUN,
        started: now.toISOString(),
        from: { ...headerDigest(oldHead), objectSize: oldHead.length + payload.length },
        to: { ...headerDigest(newHead), objectSize: newHead.length + payload.length },
        manifest: JSON.parse(serializeManifest(newManifest)),
      };
      await put(journalKey(key), JSON.stringify(journal));
    }
    if (state.staging) await put(stagingKey(key, RUN), Buffer.concat([newHead, payload]));
    return { key, oldManifest, newManifest };
  }

  /** Every file with its content hash: what "nothing was touched" compares. */
  async function contents(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for await (const o of store.list("")) {
      const body = await buffer(await store.get(o.key));
      out.set(
        o.key,
        `${o.size}:${o.lastModified.getTime()}:${createHash("sha256").update(body).digest("hex")}`,
      );
    }
    return out;
  }
  const rekeyKeys = async () => {
    const keys: string[] = [];
    for await (const o of store.list("")) if (/\.rekey(-new\.|$)/.test(o.key)) keys.push(o.key);
    return keys.sort();
  };
  const manifestOf = async (key: string) => parseManifest(await text(await store.get(`${key}.json`)));

  beforeEach(() => {
    dir = mkdtempSync(join(root, "store-"));
    store = new LocalStore(dir);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test("within the grace period: nothing touched, each shown as a rekey in progress, its backup kept", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const staged = await plant("a", t0, { object: "old", journal: false, staging: true });
    const journaled = await plant("b", t0, { object: "old", journal: true, staging: true });
    const replaced = await plant("c", t0, { object: "new", journal: true, staging: false });
    // Retention would delete this one (an older backup of cluster c), but its rekey may be running.
    const older = await plant("c", new Date("2026-10-01T00:00:00Z"), {
      object: "old",
      journal: true,
      staging: true,
    });
    const before = await contents();
    for (const dryRun of [true, false]) {
      const report = await pruneBackups(store, { last: 1 }, { now, graceMs: GRACE, dryRun });
      assert.deepEqual(await contents(), before, `dryRun=${dryRun}: something was touched`);
      assert.deepEqual(
        report.rekeys.map((c) => [c.key, c.action, c.resolution]).sort(),
        [staged.key, journaled.key, replaced.key, older.key].sort().map((k) => [k, "keep", "in progress"]),
      );
      for (const c of report.rekeys) assert.ok(c.ageMs >= 0 && c.ageMs < GRACE, `age ${c.ageMs}`);
      const kept = report.backups.find((b) => b.entry.key === older.key);
      assert.equal(kept?.action, "keep");
      assert.deepEqual(kept?.reasons, [{ rule: "rekey", hold: "rekey in progress" }]);
      assert.equal(report.freedBytes, 0);
    }
  });

  test("after the grace period: finished, undone, cleaned, deleted with the backup, orphans removed", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const staged = await plant("a", t0, { object: "old", journal: false, staging: true });
    const journaled = await plant("b", t0, { object: "old", journal: true, staging: true });
    const replaced = await plant("c", t0, { object: "new", journal: true, staging: false });
    const older = await plant("c", new Date("2026-10-01T00:00:00Z"), {
      object: "new",
      journal: true,
      staging: false,
    });
    const gone = await plant("d", t0, { object: "old", journal: true, staging: true });
    await store.delete(gone.key);
    await store.delete(`${gone.key}.json`);
    const later = new Date(now.getTime() + GRACE + HOUR);

    const dry = await pruneBackups(store, { last: 1 }, { now: later, graceMs: GRACE, dryRun: true });
    const plan = Object.fromEntries(dry.rekeys.map((c) => [c.key, [c.action, c.resolution]]));
    assert.deepEqual(plan, {
      [staged.key]: ["resolve", "clean"],
      [journaled.key]: ["resolve", "undo"],
      [replaced.key]: ["resolve", "finish"],
      [older.key]: ["resolve", "with backup"],
      [gone.key]: ["resolve", "orphaned"],
    });
    assert.equal(dry.backups.find((b) => b.entry.key === older.key)?.action, "delete");
    assert.ok((await rekeyKeys()).length > 0, "the dry run removed something");

    const report = await pruneBackups(store, { last: 1 }, { now: later, graceMs: GRACE });
    assert.deepEqual(report.failures, []);
    assert.deepEqual(await rekeyKeys(), [], "rekey leftovers after the grace period");
    const results = Object.fromEntries(report.rekeys.map((c) => [c.key, c.result]));
    assert.deepEqual(results, {
      [staged.key]: "removed",
      [journaled.key]: "undone",
      [replaced.key]: "finished",
      [older.key]: "deleted",
      [gone.key]: "deleted",
    });
    assert.equal(await store.stat(older.key), null, "the older backup was to be deleted");
    // Each backup that stays is described by its manifest: old where undone or never replaced, new where finished.
    assert.deepEqual(await manifestOf(staged.key), staged.oldManifest);
    assert.deepEqual(await manifestOf(journaled.key), journaled.oldManifest);
    assert.deepEqual(await manifestOf(replaced.key), replaced.newManifest);
    const entries = await listBackups(store);
    assert.deepEqual(
      entries.map((e) => [e.key, e.state]).sort(),
      [staged.key, journaled.key, replaced.key].sort().map((k) => [k, "complete"]),
    );
  });

  test("a journal nobody can trust is left for a person, and so is its backup", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const changed = await plant("a", t0, { object: "old", journal: true, staging: true });
    await put(
      changed.key,
      Buffer.concat([Buffer.from("something else entirely, longer than both"), payload]),
    );
    const unreadable = await plant("b", t0, { object: "new", journal: true, staging: false });
    await put(journalKey(unreadable.key), "{not json");
    // An object whose manifest is gone (an unfinished save or a half-done deletion): never given a first manifest.
    const bare = await plant("c", t0, { object: "new", journal: true, staging: false });
    await store.delete(`${bare.key}.json`);
    const later = new Date(now.getTime() + GRACE + HOUR);
    const before = await contents();
    const report = await pruneBackups(store, { last: 1 }, { now: later, graceMs: GRACE });
    assert.deepEqual(await contents(), before);
    const plan = Object.fromEntries(report.rekeys.map((c) => [c.key, [c.action, c.resolution]]));
    assert.deepEqual(plan, {
      [changed.key]: ["keep", "check"],
      [unreadable.key]: ["keep", "check"],
      [bare.key]: ["keep", "check"],
    });
    for (const c of report.rekeys) assert.match(c.problem ?? "", /by hand/);
  });

  test("the grace period counts from the newest part: an old copy beside a fresh journal is in progress", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const b = await plant("a", t0, { object: "old", journal: true, staging: true });
    const old = new Date(now.getTime() - 3 * GRACE);
    await put(stagingKey(b.key, "fedcba9876543210"), "an older run's copy");
    age(stagingKey(b.key, "fedcba9876543210"), old);
    age(stagingKey(b.key, RUN), old);
    const report = await pruneBackups(store, { last: 1 }, { now, graceMs: GRACE });
    assert.deepEqual(
      report.rekeys.map((c) => [c.resolution, c.staging.length]),
      [["in progress", 2]],
    );
    assert.equal((await rekeyKeys()).length, 3);
  });

  test("log segments (rekey --log): resolved like backups, and a removed segment's leftovers go", async () => {
    const segment = (first: number) =>
      `prod-log/0000000000000100/${String(first).padStart(16, "0")}-${String(first + 99).padStart(16, "0")}.seg.zst.age`;
    const journalFor = (key: string) => {
      const journal: RekeyJournal = {
        format: 1,
        kind: "rekey",
        run: RUN,
        started: now.toISOString(),
        from: { ...headerDigest(oldHead), objectSize: oldHead.length + payload.length },
        to: { ...headerDigest(newHead), objectSize: newHead.length + payload.length },
        manifest: { segment: key, recipients: "new" },
      };
      return put(journalKey(key), JSON.stringify(journal));
    };
    const replaced = segment(101);
    const original = segment(201);
    const removed = segment(301);
    await put(replaced, Buffer.concat([newHead, payload]));
    await put(`${replaced}.json`, JSON.stringify({ segment: replaced, recipients: "old" }));
    await journalFor(replaced);
    await put(original, Buffer.concat([oldHead, payload]));
    await put(`${original}.json`, JSON.stringify({ segment: original, recipients: "old" }));
    await journalFor(original);
    await put(stagingKey(original, RUN), Buffer.concat([newHead, payload]));
    await journalFor(removed);
    await put(stagingKey(removed, RUN), Buffer.concat([newHead, payload]));

    const before = await contents();
    const within = await pruneBackups(store, { last: 1 }, { now, graceMs: GRACE });
    assert.deepEqual(await contents(), before);
    assert.deepEqual(
      within.rekeys.map((c) => [c.kind, c.resolution]),
      [0, 1, 2].map(() => ["log segment", "in progress"]),
    );
    const report = await pruneBackups(
      store,
      { last: 1 },
      { now: new Date(now.getTime() + GRACE), graceMs: GRACE },
    );
    assert.deepEqual(report.failures, []);
    assert.deepEqual(Object.fromEntries(report.rekeys.map((c) => [c.key, [c.resolution, c.result]])), {
      [replaced]: ["finish", "finished"],
      [original]: ["undo", "undone"],
      [removed]: ["orphaned", "deleted"],
    });
    assert.deepEqual(await rekeyKeys(), []);
    assert.equal(JSON.parse(await text(await store.get(`${replaced}.json`))).recipients, "new");
    assert.equal(JSON.parse(await text(await store.get(`${original}.json`))).recipients, "old");
  });

  test("the temporary file of a rekey's copy killed while being written goes once older than the grace period", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const b = await plant("a", t0, { object: "old", journal: false, staging: false });
    // What LocalStore.put leaves when killed mid-write: `.etcd-backup-tmp-<target>.<12 hex>` beside the target.
    const temp = `.etcd-backup-tmp-${stagingKey(b.key, RUN)}.0123456789ab`;
    writeFileSync(join(dir, temp), payload);
    const within = await pruneBackups(store, { last: 1 }, { now, graceMs: GRACE });
    assert.deepEqual(
      within.leftovers.map((l) => [l.entry.key, l.action]),
      [[temp, "keep"]],
    );
    assert.ok(existsSync(join(dir, temp)));
    const later = await pruneBackups(
      store,
      { last: 1 },
      { now: new Date(now.getTime() + GRACE), graceMs: GRACE },
    );
    assert.deepEqual(
      later.leftovers.map((l) => [l.entry.key, l.result]),
      [[temp, "deleted"]],
    );
    assert.ok(!existsSync(join(dir, temp)));
    assert.ok(await store.stat(b.key), "the backup stays");
  });

  test("recovery on prune's terms leaves another run's journal and a newer copy alone", async () => {
    const t0 = new Date("2026-11-01T00:00:00Z");
    const b = await plant("a", t0, { object: "old", journal: true, staging: true });
    // A newer run's copy (written after the cut-off) stays; only the planned run's journal is resolved.
    await put(stagingKey(b.key, "aaaaaaaaaaaaaaaa"), "a newer run's copy");
    age(stagingKey(b.key, RUN), new Date(now.getTime() - 2 * GRACE));
    const cutoff = new Date(now.getTime() - GRACE);
    assert.equal(
      await recoverInterruptedRekey(store, b.key, `${b.key}.json`, {
        run: "ffffffffffffffff",
        stagedBefore: cutoff,
      }),
      null,
      "another run's journal was acted on",
    );
    assert.equal((await rekeyKeys()).length, 3);
    assert.equal(
      await recoverInterruptedRekey(store, b.key, `${b.key}.json`, { run: RUN, stagedBefore: cutoff }),
      "undone",
    );
    assert.deepEqual(await rekeyKeys(), [stagingKey(b.key, "aaaaaaaaaaaaaaaa")]);
  });
});
