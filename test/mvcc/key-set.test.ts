import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ByteKeySet } from "../../src/mvcc/key-set.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

describe("ByteKeySet", () => {
  test("counts like a Set of the same keys through adds, deletes and re-adds, past every growth", () => {
    const random = new SeededRandom(testSeed(3600));
    const keys = new ByteKeySet();
    const reference = new Set<string>();
    // Keys live inside a larger page buffer, at random offsets, as a walk hands them over.
    const page = Buffer.alloc(1 << 16);
    // A small alphabet and short lengths make equal keys (and hash collisions of the slot index) common.
    const pool = Array.from({ length: 30_000 }, () =>
      Buffer.from(random.bytes(random.int(0, 24)).map((b) => b % 5)),
    );
    pool.push(Buffer.alloc(300, 1), Buffer.alloc(0));
    try {
      for (let i = 0; i < 150_000; i++) {
        const key = random.pick(pool);
        const at = random.int(0, page.length - key.length);
        key.copy(page, at);
        const name = key.toString("latin1");
        if (random.next() < 0.3) {
          keys.delete(page, at, at + key.length);
          reference.delete(name);
        } else {
          keys.add(page, at, at + key.length);
          reference.add(name);
        }
        // The page is overwritten at once: the set must hold its own copy.
        page.fill(0xee, at, at + key.length);
        if (i % 10_000 === 0) assert.equal(keys.size, reference.size, `after ${i + 1} operations`);
      }
      assert.equal(keys.size, reference.size);
    } catch (err) {
      console.error(`seed ${random.seed} (rerun with ETCD_BACKUP_TEST_SEED=${random.seed})`);
      throw err;
    }
  });

  test("a key differing in one byte, or in length only, is another key", () => {
    const keys = new ByteKeySet();
    keys.add(Buffer.from("/registry/pods/a"), 0, 16);
    keys.add(Buffer.from("/registry/pods/b"), 0, 16);
    keys.add(Buffer.from("/registry/pods/a"), 0, 15);
    keys.add(Buffer.from("x/registry/pods/a"), 1, 17);
    assert.equal(keys.size, 3);
    keys.delete(Buffer.from("/registry/pods/c"), 0, 16);
    assert.equal(keys.size, 3);
    keys.delete(Buffer.from("/registry/pods/a"), 0, 16);
    keys.delete(Buffer.from("/registry/pods/a"), 0, 16);
    assert.equal(keys.size, 2);
  });
});
