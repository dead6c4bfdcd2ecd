/**
 * The zstd decoder stage on input made by the real `zstd` CLI: one frame, several concatenated frames (as pzstd
 * or `cat a.zst b.zst` make), skippable frames, frames with and without checksums, empty frames, in pieces of
 * every size; truncation and garbage are errors, never a short output.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { ZstdDecompressStream, ZstdFormatError } from "../../src/stages/zstd-decompress.ts";
import { collect, pieces, sample } from "./streams.ts";

const ZSTD = "/usr/bin/zstd";

function zstd(input: Buffer, ...args: string[]): Buffer {
  return execFileSync(ZSTD, ["-q", "-c", ...args, "-"], { input, maxBuffer: 256 << 20 });
}

/** A skippable frame (magic 0x184D2A5n, 4-byte little-endian size, content). */
function skippable(content: Buffer, n = 0): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50 + n, 0);
  head.writeUInt32LE(content.length, 4);
  return Buffer.concat([head, content]);
}

async function decode(input: Buffer, piece: number): Promise<Buffer> {
  const out = collect();
  await pipeline(pieces(input, piece), new ZstdDecompressStream(), out.sink);
  return out.result();
}

describe("ZstdDecompressStream", () => {
  const a = sample(3_000_000, 1);
  const b = sample(700_000, 2);
  const c = sample(1, 3);
  // Byte-by-byte feeding (every header split at every point) on frames small enough to do it quickly.
  const tinyA = sample(40_000, 6);
  const tinyB = sample(9_000, 7);

  it("reads a single frame like zstd -d, in pieces of any size", async () => {
    const zst = zstd(a);
    for (const piece of [4096, 1 << 20, zst.length]) {
      assert.ok((await decode(zst, piece)).equals(a), `pieces of ${piece}`);
    }
    const tiny = zstd(tinyA);
    for (const piece of [1, 2, 3, 5])
      assert.ok((await decode(tiny, piece)).equals(tinyA), `pieces of ${piece}`);
  });

  it("reads concatenated frames (with and without checksums, empty ones) and skips skippable frames", async () => {
    const zst = Buffer.concat([
      zstd(a),
      skippable(Buffer.from("seek table or any metadata")),
      zstd(b, "--no-check"),
      zstd(Buffer.alloc(0)),
      skippable(Buffer.alloc(0), 15),
      zstd(c, "-19"),
    ]);
    const expected = Buffer.concat([a, b, c]);
    assert.ok(
      execFileSync(ZSTD, ["-dc", "-"], { input: zst, maxBuffer: 64 << 20 }).equals(expected),
      "zstd -d agrees",
    );
    for (const piece of [4093, 65536, zst.length]) {
      assert.ok((await decode(zst, piece)).equals(expected), `pieces of ${piece}`);
    }
    const tiny = Buffer.concat([
      zstd(tinyA),
      skippable(Buffer.from("x"), 3),
      zstd(tinyB, "--no-check"),
      zstd(c),
    ]);
    for (const piece of [1, 3, 7]) {
      assert.ok((await decode(tiny, piece)).equals(Buffer.concat([tinyA, tinyB, c])), `pieces of ${piece}`);
    }
  });

  it("reads frames with a known content size and single-segment frames (zstd --content-size of small input)", async () => {
    const small = sample(1000, 4);
    const zst = Buffer.concat([zstd(small, "--content-size"), zstd(small, "--no-content-size"), zstd(b)]);
    assert.ok((await decode(zst, 13)).equals(Buffer.concat([small, small, b])));
  });

  it("reports data that stops inside a frame as truncated, at any cut", async () => {
    const zst = Buffer.concat([zstd(a), zstd(b)]);
    for (const cut of [1, 4, 5, 9, zstd(a).length + 2, zst.length - 1]) {
      await assert.rejects(decode(zst.subarray(0, cut), 4096), /truncated|unexpected end/i, `cut at ${cut}`);
    }
  });

  it("refuses data that is not zstd, and garbage after a frame", async () => {
    await assert.rejects(decode(Buffer.from("plain text, not zstd"), 5), ZstdFormatError);
    await assert.rejects(decode(Buffer.concat([zstd(b), Buffer.from("garbage!")]), 4096), ZstdFormatError);
  });

  it("fails on a corrupted block instead of returning wrong bytes", async () => {
    const zst = zstd(a);
    const bad = Buffer.from(zst);
    bad[Math.floor(bad.length / 2)]! ^= 0xff;
    await assert.rejects(decode(bad, 65536));
  });

  it("holds back input while its reader does not read (backpressure)", async () => {
    const big = sample(64 << 20, 5);
    const zst = zstd(big);
    const stage = new ZstdDecompressStream();
    let offered = 0;
    const source = pieces(zst, 16384, (p) => {
      offered += p.length;
    });
    source.pipe(stage);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(
      offered < zst.length / 2,
      `${offered} of ${zst.length} compressed bytes taken without a reader`,
    );
    const parts: Buffer[] = [];
    for await (const part of stage) parts.push(part as Buffer);
    assert.ok(Buffer.concat(parts).equals(big), "everything arrives once read");
  });
});
