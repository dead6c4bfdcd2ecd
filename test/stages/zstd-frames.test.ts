/**
 * Parallel zstd frames: the output is a sequence of frames in input order that the real `zstd` CLI and our
 * decoder read back exactly, whatever the chunking, frame size and number of workers; empty input makes one
 * valid empty frame; the stage takes no more input than its frames in flight while nobody reads it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { handOver } from "../../src/stages/buffer-handover.ts";
import { ZstdDecompressStream } from "../../src/stages/zstd-decompress.ts";
import { ZstdFrames } from "../../src/stages/zstd-frames.ts";
import { collect, pieces, sample } from "./streams.ts";

async function compress(input: Buffer, chunk: number, options: { frameBytes?: number; workers?: number }) {
  const out = collect();
  await pipeline(pieces(input, chunk), new ZstdFrames({ level: 3, ...options }), out.sink);
  return out.result();
}

async function decompress(zst: Buffer): Promise<Buffer> {
  const out = collect();
  await pipeline(pieces(zst, 100_000), new ZstdDecompressStream(), out.sink);
  return out.result();
}

function zstdCli(args: string[], input: Buffer): string {
  return execFileSync("/usr/bin/zstd", args, { input, maxBuffer: 64 << 20 }).toString("latin1");
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("ZstdFrames", () => {
  it("writes one frame per frameBytes of input, in order, read back by zstd -d and by our decoder", async () => {
    const input = sample(5_000_000);
    const zst = await compress(input, 65536, { frameBytes: 1 << 20, workers: 3 });
    // zstd -l reads files only.
    const dir = mkdtempSync(join(tmpdir(), "zstd-frames-"));
    try {
      writeFileSync(join(dir, "x.zst"), zst);
      const listing = execFileSync("/usr/bin/zstd", ["-lv", join(dir, "x.zst")]).toString();
      assert.match(listing, /Frames: 5\b/);
      assert.match(listing, /Check: XXH64/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(zst.length < input.length / 2, "compresses");
    assert.equal(sha(Buffer.from(zstdCli(["-dc", "-"], zst), "latin1")), sha(input));
    assert.equal(sha(await decompress(zst)), sha(input));
  });

  it("round-trips sizes around the frame boundary with any chunking and worker count", async () => {
    const frame = 64 * 1024;
    for (const size of [1, frame - 1, frame, frame + 1, 3 * frame, 3 * frame + 17]) {
      for (const [chunk, workers] of [
        [1000, 1],
        [frame, 2],
        [5 * frame, 4],
      ] as const) {
        const input = sample(size);
        const zst = await compress(input, chunk, { frameBytes: frame, workers });
        assert.equal(
          sha(await decompress(zst)),
          sha(input),
          `size ${size}, chunk ${chunk}, ${workers} workers`,
        );
      }
    }
  });

  it("writes one valid empty frame for empty input", async () => {
    const zst = await compress(Buffer.alloc(0), 1, {});
    assert.ok(zst.length > 0);
    assert.equal(zstdCli(["-dc", "-"], zst).length, 0);
  });

  it("takes no more than its frames in flight while nobody reads (backpressure)", async () => {
    const stage = new ZstdFrames({ level: 3, frameBytes: 256 * 1024, workers: 2 });
    const input = sample(16 << 20);
    let offered = 0;
    const source = pieces(input, 65536, (p) => {
      offered += p.length;
    });
    source.pipe(stage);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(offered < 6 << 20, `${offered} bytes taken without a reader`);
    const out = collect();
    await pipeline(stage, out.sink);
    assert.equal(sha(await decompress(out.result())), sha(input), "everything arrives once read");
  });

  it("frees the pieces handed over to it once their frame is compressed, and only those", async () => {
    const input = sample(3_000_000, 5);
    const piece = 100_000;
    const given: Buffer[] = [];
    for (let off = 0; off < input.length; off += piece) {
      const own = Buffer.alloc(Math.min(piece, input.length - off));
      input.copy(own, 0, off, off + own.length);
      // Every other piece is handed over; the rest belong to someone else and must stay as they are.
      given.push(given.length % 2 === 0 ? handOver(own) : own);
    }
    const out = collect();
    await pipeline(
      Readable.from(given),
      new ZstdFrames({ level: 3, frameBytes: 1 << 20, workers: 2 }),
      out.sink,
    );
    assert.equal(sha(await decompress(out.result())), sha(input));
    given.forEach((b, i) => {
      if (i % 2 === 0) assert.equal(b.length, 0, `handed-over piece ${i} is freed`);
      else assert.deepEqual(b, input.subarray(i * piece, i * piece + b.length), `piece ${i} is untouched`);
    });
  });
});
