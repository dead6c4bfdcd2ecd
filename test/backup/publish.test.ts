/**
 * Name claims: concurrent publishes of one name against a directory and against S3 (s3rver as it is, which ignores
 * conditional writes, and with the stand-in that honours them as AWS does). Every publish that succeeds has its own
 * name, and the object under it is the one its manifest describes.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { after, before, describe, test } from "node:test";
import { MAX_NAME_ATTEMPTS, publishBackup } from "../../src/backup/publish.ts";
import { listBackups, resolveBackup } from "../../src/catalog/catalog.ts";
import { backupKey, manifestKey } from "../../src/catalog/names.ts";
import { describeError } from "../../src/errors.ts";
import { LocalStore } from "../../src/store/local.ts";
import { S3Store } from "../../src/store/s3.ts";
import type { Store } from "../../src/store/store.ts";
import { verifyBackup } from "../../src/verify/verify.ts";
import { fakeSnapshot, sampleManifest } from "../catalog/fixtures.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

const T0 = new Date("2026-11-30T07:00:00Z");
const KEY = backupKey({ cluster: "prod", time: T0, compression: "none", encrypted: false });

function publishOne(store: Store, body: Buffer, key = KEY) {
  return publishBackup({
    store,
    key,
    started: T0,
    claimSettleMs: 150,
    openBody: () => Readable.from([body]),
    makeManifest: () => sampleManifest("prod", T0, body, "none", body.length),
  });
}

async function readAll(store: Store, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.get(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Runs `n` publishes of the same name at once and checks what the brief promises about them. */
async function concurrentPublishes(store: Store, n: number): Promise<{ ok: number; keys: string[] }> {
  const bodies = Array.from({ length: n }, (_, i) => fakeSnapshot(i + 1, 2 + (i % 3)));
  const results = await Promise.allSettled(bodies.map((b) => publishOne(store, b)));
  const keys: string[] = [];
  for (const [i, r] of results.entries()) {
    if (r.status === "rejected") {
      // A refusal is one clear sentence, never a silent loss.
      assert.match(describeError(r.reason), /took the name|appeared|no free name/, describeError(r.reason));
      continue;
    }
    const { key, manifest } = r.value;
    keys.push(key);
    const stored = await readAll(store, key);
    assert.deepEqual(stored, bodies[i], `${key} holds another run's object`);
    assert.equal(manifest.object?.size, stored.length);
    assert.equal(manifest.object?.sha256, createHash("sha256").update(stored).digest("hex"));
    const onDisk = JSON.parse(await text(await store.get(manifestKey(key)))) as { run: string };
    assert.equal(onDisk.run, manifest.run, `${key}: the manifest stored is another run's`);
  }
  assert.equal(new Set(keys).size, keys.length, `two successes share a name: ${keys.join(", ")}`);
  const entries = await listBackups(store);
  const complete = entries.filter((e) => e.state === "complete").map((e) => e.key);
  assert.deepEqual(complete.sort(), [...keys].sort(), "list disagrees with the successful publishes");
  assert.deepEqual(
    entries.filter((e) => e.marker),
    [],
    "a .pending marker was left behind",
  );
  return { ok: keys.length, keys };
}

describe("publish on a directory", () => {
  let dir: string;
  let store: LocalStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-publish-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("8 publishes of one name all succeed, each under its own second", async () => {
    store = new LocalStore(join(dir, "race"));
    await rm(store.root, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(store.root));
    const { ok, keys } = await concurrentPublishes(store, 8);
    assert.equal(ok, 8);
    const expected = Array.from({ length: 8 }, (_, i) =>
      backupKey({
        cluster: "prod",
        time: new Date(T0.getTime() + i * 1000),
        compression: "none",
        encrypted: false,
      }),
    );
    assert.deepEqual(keys.sort(), expected.sort());
  });

  test("a name taken by another tool's object, or by a killed run's marker, moves to the next second", async () => {
    const root = join(dir, "taken");
    await import("node:fs/promises").then((fs) => fs.mkdir(root));
    const local = new LocalStore(root);
    await writeFile(join(root, KEY), "talos-backup's object");
    const second = backupKey({
      cluster: "prod",
      time: new Date(T0.getTime() + 1000),
      compression: "none",
      encrypted: false,
    });
    await writeFile(join(root, `${second}.pending`), '{"run":"00000000000000000000000000000000"}');
    const body = fakeSnapshot(7);
    const published = await publishOne(local, body);
    assert.equal(
      published.key,
      backupKey({
        cluster: "prod",
        time: new Date(T0.getTime() + 2000),
        compression: "none",
        encrypted: false,
      }),
    );
    assert.equal((await readAll(local, KEY)).toString(), "talos-backup's object");
  });

  test("when every name is taken the publish fails with one line and writes nothing", async () => {
    const root = join(dir, "full");
    await import("node:fs/promises").then((fs) => fs.mkdir(root));
    const local = new LocalStore(root);
    for (let i = 0; i < MAX_NAME_ATTEMPTS; i++) {
      const key = backupKey({
        cluster: "prod",
        time: new Date(T0.getTime() + i * 1000),
        compression: "none",
        encrypted: false,
      });
      await writeFile(join(root, `${key}.pending`), "{}");
    }
    let abandoned = false;
    await assert.rejects(
      publishBackup({
        store: local,
        key: KEY,
        started: T0,
        openBody: () => assert.fail("the body must not be opened"),
        makeManifest: () => assert.fail("no manifest"),
        abandon: () => {
          abandoned = true;
        },
      }),
      (err: unknown) => {
        assert.match(describeError(err), /no free name .* the 29 names after it are taken/);
        assert.doesNotMatch(describeError(err), /\n/);
        return true;
      },
    );
    assert.ok(abandoned);
    assert.equal((await listBackups(local)).filter((e) => e.object).length, 0);
  });
});

for (const conditionalWrites of [true, false]) {
  describe(`publish on S3 (${conditionalWrites ? "conditional writes honoured" : "s3rver ignoring If-None-Match"})`, () => {
    let s3: TestS3Server;
    let store: S3Store;
    before(async () => {
      s3 = await startS3Server({ conditionalWrites });
      await s3.createBucket("b");
      store = new S3Store({
        bucket: "b",
        prefix: "etcd",
        settings: { endpoint: s3.endpoint, retryBaseDelayMs: 10 },
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      });
    });
    after(async () => {
      store.destroy();
      await s3.stop();
    });

    test("the first create tells whether the service honours conditional writes", async () => {
      assert.equal(store.conditionalWrites, undefined);
      const first = await store.put("first.txt", Readable.from([Buffer.from("x")]), { ifAbsent: true });
      assert.equal(store.conditionalWrites, conditionalWrites);
      assert.equal(first.exclusive, conditionalWrites);
      assert.equal((await store.stat("first.txt"))?.size, 1);
    });

    test("8 publishes of one name: every success has its own name and its own object", async (t) => {
      const { ok } = await concurrentPublishes(store, 8);
      t.diagnostic(`${ok} of 8 publishes succeeded`);
      // With conditional writes every publish gets a name; without, a claim may lose a race and say so.
      if (conditionalWrites) assert.equal(ok, 8);
      else assert.ok(ok >= 1);
    });

    test("the object carries the run id that its manifest records", async () => {
      const body = randomBytes(1000);
      const key = backupKey({ cluster: "owner", time: T0, compression: "none", encrypted: false });
      const published = await publishOne(store, body, key);
      assert.equal((await store.stat(published.key))?.owner, published.manifest.run);
    });

    test("a save aborted while its claim settles leaves no marker", { skip: conditionalWrites }, async () => {
      const key = backupKey({ cluster: "aborted", time: T0, compression: "none", encrypted: false });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      let abandoned = false;
      await assert.rejects(
        publishBackup({
          store,
          key,
          started: T0,
          claimSettleMs: 2000,
          signal: controller.signal,
          openBody: () => assert.fail("the body must not be opened"),
          makeManifest: () => assert.fail("no manifest"),
          abandon: () => {
            abandoned = true;
          },
        }),
      );
      assert.ok(abandoned);
      assert.deepEqual(
        (await listBackups(store)).filter((e) => e.cluster === "aborted"),
        [],
      );
    });

    test("an object replaced by another run is refused by resolve and named by verify", async () => {
      const body = fakeSnapshot(3, 4);
      const key = backupKey({ cluster: "replaced", time: T0, compression: "none", encrypted: false });
      const published = await publishOne(store, body, key);
      // Same size, other bytes, other writer: the listing alone cannot tell.
      await store.put(published.key, Readable.from([fakeSnapshot(4, 4)]), { owner: "f".repeat(32) });
      await assert.rejects(resolveBackup(store, published.key), (err: unknown) => {
        assert.match(describeError(err), /object written by run f{32}, its manifest by run [0-9a-f]{32}/);
        return true;
      });
      const entry = await resolveBackup(store, published.key, { allowMismatched: true });
      const report = await verifyBackup(store, entry);
      const failed = report.checks.filter((c) => !c.ok && c.severity === "error").map((c) => c.name);
      assert.ok(failed.includes("object run"), failed.join(", "));
      assert.ok(failed.includes("object sha256"), failed.join(", "));
    });
  });
}
