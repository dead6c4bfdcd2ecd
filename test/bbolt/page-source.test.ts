import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { FileSource } from "../../src/bbolt/page-source.ts";
import { crc32cUpdate, jsUpdate } from "../../src/mvcc/crc32c.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

describe("FileSource: views through its window cache", () => {
  let dir: string;
  let path: string;
  let content: Buffer;
  const random = new SeededRandom(testSeed(4242));
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-page-source-"));
    path = join(dir, "file");
    // 12 MiB: three times the window cache, so windows are evicted and reused.
    content = random.bytes(12 << 20);
    await writeFile(path, content);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a span assembled across windows leaves every cached window intact", () => {
    const source = new FileSource(path);
    try {
      const window = 64 * 1024;
      const windows = (4 << 20) / window;
      for (let w = 0; w < windows; w++) source.view(w * window, 4096);
      for (const length of [window + 1, 1 << 20, 2 << 20]) {
        const pos = 7 * window - 100;
        assert.ok(source.view(pos, length).equals(content.subarray(pos, pos + length)));
      }
      for (let w = 0; w < windows; w++) {
        const pos = w * window + 100;
        assert.ok(source.view(pos, 4096).equals(content.subarray(pos, pos + 4096)), `window ${w}`);
      }
    } finally {
      source.close();
    }
  });

  test("random views, within a window, across windows and longer than the cache, read the file's bytes", () => {
    const source = new FileSource(path);
    try {
      for (let i = 0; i < 3000; i++) {
        const kind = random.int(0, 9);
        // Mostly pages; some multi-page spans across windows; a few spans beyond the scratch (read directly).
        const length = kind < 7 ? 4096 : kind < 9 ? random.int(1, 300_000) : random.int(2 << 20, 3 << 20);
        const pos = random.int(0, content.length - length);
        const view = source.view(pos, length);
        assert.ok(view.equals(content.subarray(pos, pos + length)), `view of ${length} bytes at ${pos}`);
        // Hashed where it lies (the windows are CRC-32C memory) or copied in: the same checksum either way.
        assert.equal(crc32cUpdate(0, view), jsUpdate(0, view), `checksum of ${length} bytes at ${pos}`);
        if (i % 500 === 0) {
          assert.throws(() => source.view(content.length - 10, 20), /beyond end of file/);
        }
      }
      const copy = source.bytes(5000, 70_000);
      source.view(0, 4096);
      assert.ok(copy.equals(content.subarray(5000, 75_000)), "bytes() is the caller's copy");
    } catch (err) {
      console.error(`seed ${random.seed} (rerun with ETCD_BACKUP_TEST_SEED=${random.seed})`);
      throw err;
    } finally {
      source.close();
    }
  });
});
