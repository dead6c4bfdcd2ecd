import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AlreadyExistsError, type Leftover, NotFoundError, type Store } from "../../src/store/store.ts";

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
  /** Whether this backend makes `ifAbsent` creates exclusive (what `PutResult.exclusive` must say). */
  exclusiveCreate: boolean;
}

const MiB = 1024 * 1024;
/**
 * What the atomicity tests write before they pause, fail or abort: more than 5 MiB, the smallest part S3 allows,
 * so that a backend that uploads in parts has already sent one.
 */
const BEFORE_INTERRUPTION = 6 * MiB;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function listKeys(store: Store, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys.sort();
}

/** Checks that `key` is nowhere: not listed, `stat` null, `get` a NotFoundError. */
async function assertAbsent(store: Store, key: string): Promise<void> {
  assert.ok(!(await listKeys(store)).includes(key), `${key} is listed`);
  assert.equal(await store.stat(key), null);
  await assert.rejects(store.get(key), NotFoundError);
}

/** A body that yields `bytes` in chunks of `chunk` bytes, the way a network source does. */
function chunked(bytes: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= bytes.length) return void this.push(null);
      this.push(bytes.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/**
 * The `Store` contract, run against one backend. `makeStore` gives a fresh, empty store each time it is called;
 * `cleanup` releases it.
 */
export function runStoreConformance(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store conformance: ${name}`, () => {
    let subject: StoreUnderTest;
    let store: Store;
    before(async () => {
      subject = await makeStore();
      store = subject.store;
    });
    after(async () => {
      await subject.cleanup();
    });

    for (const size of [0, 1, 11 * MiB + 17]) {
      test(`round trip of ${size} bytes`, async () => {
        const bytes = randomBytes(size);
        const key = `round-trip-${size}`;
        const result = await store.put(key, chunked(bytes));
        assert.equal(result.size, size);
        assert.deepEqual(await readAll(await store.get(key)), bytes);
        const info = await store.stat(key);
        assert.equal(info?.key, key);
        assert.equal(info?.size, size);
        assert.ok(info.lastModified instanceof Date && !Number.isNaN(info.lastModified.getTime()));
      });
    }

    test("a put in progress is not visible, then is whole", async () => {
      const body = new PassThrough();
      const first = randomBytes(BEFORE_INTERRUPTION);
      body.write(first);
      const put = store.put("in-progress", body);
      await sleep(300);
      await assertAbsent(store, "in-progress");
      const rest = randomBytes(50_000);
      body.end(rest);
      await put;
      assert.deepEqual(await readAll(await store.get("in-progress")), Buffer.concat([first, rest]));
    });

    test("a body that errors makes put reject with that error and leaves nothing", async () => {
      const body = new PassThrough();
      body.write(randomBytes(BEFORE_INTERRUPTION));
      const boom = new Error("etcd source died");
      const put = store.put("body-error", body);
      setTimeout(() => body.destroy(boom), 300);
      await assert.rejects(put, (err: unknown) => hasCause(err, boom));
      await assertAbsent(store, "body-error");
    });

    test("an aborted put rejects and leaves nothing, also over an existing key", async () => {
      await store.put("aborted", Readable.from([Buffer.from("old")]));
      const body = new PassThrough();
      body.write(randomBytes(BEFORE_INTERRUPTION));
      const controller = new AbortController();
      const put = store.put("aborted", body, { signal: controller.signal });
      setTimeout(() => controller.abort(), 300);
      await assert.rejects(put);
      // The old object is untouched: the aborted upload never replaced it.
      assert.equal((await readAll(await store.get("aborted"))).toString(), "old");
      await store.delete("aborted");
      await assertAbsent(store, "aborted");
    });

    test("a put in flight is reported as a leftover with its key, never listed; an aborted put leaves none", async () => {
      const key = "leftover/one.snap";
      const body = new PassThrough();
      body.write(randomBytes(BEFORE_INTERRUPTION));
      const controller = new AbortController();
      const put = store.put(key, body, { signal: controller.signal });
      put.catch(() => {});
      // What a killed process would leave: the put's temporary file, or its multipart upload once a part is sent.
      let seen: Leftover | undefined;
      for (let i = 0; i < 100 && !seen; i++) {
        for await (const l of store.leftovers("leftover/")) if (l.key === key) seen = l;
        if (!seen) await sleep(100);
      }
      assert.ok(seen, "the put in flight was not reported as a leftover");
      assert.ok(["temporary file", "multipart upload", "resumable upload"].includes(seen.kind));
      assert.ok(Date.now() - seen.since.getTime() < 600_000, `since ${seen.since.toISOString()}`);
      await assertAbsent(store, key);
      controller.abort();
      await assert.rejects(put);
      // The store cleaned up after its own aborted put; removing what was seen again counts as done.
      await store.removeLeftover(seen);
      const after: string[] = [];
      for await (const l of store.leftovers("leftover/")) after.push(l.key);
      assert.deepEqual(after, []);
      await assertAbsent(store, key);
    });

    test("a put with an already aborted signal rejects and stores nothing", async () => {
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(
        store.put("pre-aborted", Readable.from([Buffer.from("x")]), { signal: controller.signal }),
      );
      await assertAbsent(store, "pre-aborted");
    });

    test("overwrite replaces the whole object", async () => {
      await store.put("overwrite", Readable.from([Buffer.from("first version, longer")]));
      await store.put("overwrite", Readable.from([Buffer.from("second")]));
      assert.equal((await readAll(await store.get("overwrite"))).toString(), "second");
      assert.equal((await store.stat("overwrite"))?.size, 6);
    });

    test("list yields every object under a prefix, nested keys included", async () => {
      const keys = ["list/a.snap", "list/b.snap", "list/sub/c.snap", "listing-other", "elsewhere/d"];
      await Promise.all(keys.map((k) => store.put(k, Readable.from([Buffer.from(k)]))));
      assert.deepEqual(await listKeys(store, "list/"), ["list/a.snap", "list/b.snap", "list/sub/c.snap"]);
      assert.deepEqual(await listKeys(store, "list"), [
        "list/a.snap",
        "list/b.snap",
        "list/sub/c.snap",
        "listing-other",
      ]);
      const all = await listKeys(store);
      for (const k of keys) assert.ok(all.includes(k), `${k} missing from the full listing`);
      const sizes = new Map<string, number>();
      for await (const info of store.list("list/")) sizes.set(info.key, info.size);
      assert.equal(sizes.get("list/a.snap"), "list/a.snap".length);
    });

    test("delete removes the object and is idempotent", async () => {
      await store.put("to-delete", Readable.from([Buffer.from("x")]));
      await store.delete("to-delete");
      await assertAbsent(store, "to-delete");
      await store.delete("to-delete");
      await store.delete("never-existed");
    });

    test("ifAbsent creates a new key and says how exclusive that was", async () => {
      const result = await store.put("if-absent/new", Readable.from([Buffer.from("mine")]), {
        ifAbsent: true,
      });
      assert.equal(result.size, 4);
      assert.equal(result.exclusive, subject.exclusiveCreate);
      assert.equal((await readAll(await store.get("if-absent/new"))).toString(), "mine");
    });

    for (const size of [3, 6 * MiB]) {
      test(`ifAbsent over an existing key rejects with AlreadyExistsError and keeps the old object (${size} bytes)`, async () => {
        const key = `if-absent/taken-${size}`;
        await store.put(key, Readable.from([Buffer.from("old")]));
        await assert.rejects(
          store.put(key, chunked(randomBytes(size)), { ifAbsent: true }),
          (err: unknown) => {
            assert.ok(err instanceof AlreadyExistsError, String(err));
            assert.equal(err.key, key);
            return true;
          },
        );
        assert.equal((await readAll(await store.get(key))).toString(), "old");
        assert.deepEqual(
          (await listKeys(store, "if-absent/")).filter((k) => k.startsWith(key)),
          [key],
        );
      });
    }

    test("concurrent ifAbsent creates of one key: exactly one wins where creates are exclusive", async () => {
      const bodies = Array.from({ length: 8 }, (_, i) =>
        Buffer.from(`writer ${i} ${randomBytes(8).toString("hex")}`),
      );
      const results = await Promise.allSettled(
        bodies.map((b) => store.put("if-absent/race", Readable.from([b]), { ifAbsent: true })),
      );
      const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      for (const r of results) {
        if (r.status === "rejected") assert.ok(r.reason instanceof AlreadyExistsError, String(r.reason));
      }
      assert.ok(winners.length >= 1, "no create succeeded");
      const stored = (await readAll(await store.get("if-absent/race"))).toString();
      if (subject.exclusiveCreate) {
        assert.equal(winners.length, 1, `${winners.length} creates succeeded`);
        assert.equal(stored, bodies[winners[0]!]!.toString());
      } else {
        // Only checked before writing: several may "win", but the object is one writer's whole body.
        assert.ok(bodies.some((b) => b.toString() === stored));
      }
    });

    test("get of a missing key is a NotFoundError naming the key", async () => {
      await assert.rejects(store.get("missing/key"), (err: unknown) => {
        assert.ok(err instanceof NotFoundError);
        assert.equal(err.key, "missing/key");
        assert.match(err.message, /missing\/key/);
        return true;
      });
      assert.equal(await store.stat("missing/key"), null);
    });
  });
}

function hasCause(err: unknown, wanted: unknown): boolean {
  for (let cur = err, depth = 0; cur !== undefined && depth < 10; depth++) {
    if (cur === wanted) return true;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  assert.fail(`rejection ${String(err)} does not carry the body's error as its cause`);
}
