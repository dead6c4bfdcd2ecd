/**
 * The local store's file writer (src/store/file-sink.ts): every byte lands in order, short writes included;
 * the file is fsynced before `finish`; chunks handed over to it are freed only after their write completed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { handOver } from "../../src/stages/buffer-handover.ts";
import { FileSink } from "../../src/store/file-sink.ts";

/** A buffer with its own memory (Buffer.from of a few bytes would slice Node's shared pool). */
function own(bytes: Buffer): Buffer {
  const b = Buffer.alloc(bytes.length);
  bytes.copy(b);
  return b;
}

describe("FileSink", () => {
  it("writes a stream to a real file and frees the handed-over chunks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "file-sink-"));
    try {
      const data = randomBytes(3_000_000);
      const chunks: Buffer[] = [];
      const lengths: number[] = [];
      for (let off = 0; off < data.length; off += 70_000) {
        const c = own(data.subarray(off, off + 70_000));
        lengths.push(c.length);
        chunks.push(chunks.length % 3 === 0 ? c : handOver(c));
      }
      const handle = await open(join(dir, "f"), "wx");
      const sink = new FileSink(handle);
      await pipeline(Readable.from(chunks), sink);
      await handle.close();
      assert.equal(sink.bytesWritten, data.length);
      assert.deepEqual(readFileSync(join(dir, "f")), data);
      for (const [i, c] of chunks.entries())
        assert.equal(c.length, i % 3 === 0 ? lengths[i] : 0, `chunk ${i}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("goes on after short writes, frees chunks only once written, and syncs before finishing", async () => {
    const written: Buffer[] = [];
    const events: string[] = [];
    const handle = {
      // At most 5 bytes a call, as a file system may take fewer bytes than asked.
      async writev(buffers: Buffer[]) {
        const all = Buffer.concat(buffers);
        const n = Math.min(5, all.length);
        written.push(Buffer.from(all.subarray(0, n)));
        // What a write reads may not be freed before it completes (a freed view reads as empty).
        for (const b of buffers) assert.ok(b.length > 0, "a chunk was freed before its write completed");
        return { bytesWritten: n, buffers };
      },
      async sync() {
        events.push("sync");
      },
    } as unknown as FileHandle;
    const data = randomBytes(64);
    const given = [own(data.subarray(0, 13)), own(data.subarray(13, 40)), own(data.subarray(40))].map((b) =>
      handOver(b),
    );
    const sink = new FileSink(handle);
    sink.on("finish", () => events.push("finish"));
    await pipeline(Readable.from(given), sink);
    assert.deepEqual(Buffer.concat(written), data);
    assert.equal(sink.bytesWritten, 64);
    assert.deepEqual(events, ["sync", "finish"]);
    for (const b of given) assert.equal(b.length, 0);
  });

  it("fails the stream when the file takes no bytes at all", async () => {
    const handle = {
      async writev(buffers: Buffer[]) {
        return { bytesWritten: 0, buffers };
      },
      async sync() {},
    } as unknown as FileHandle;
    await assert.rejects(
      pipeline(Readable.from([own(Buffer.from("abc"))]), new FileSink(handle)),
      /took no bytes/,
    );
  });
});
