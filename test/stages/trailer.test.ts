/**
 * The trailer check on the sizes around the trailer (0, 31, 32, 33 bytes and larger) and with the trailer
 * split across chunks at every position: the bytes pass through unchanged when the trailer matches, and the
 * stream fails (never ends cleanly) when it does not.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { TrailerCheck } from "../../src/stages/trailer.ts";
import { collect, pieces, sample } from "./streams.ts";

function withTrailer(db: Buffer): Buffer {
  return Buffer.concat([db, createHash("sha256").update(db).digest()]);
}

async function run(input: Buffer, chunk: number) {
  const check = new TrailerCheck();
  const out = collect();
  await pipeline(pieces(input, Math.max(1, chunk)), check, out.sink);
  return { out: out.result(), result: check.result };
}

test("too short to hold a trailer: 0 and 31 bytes fail", async () => {
  for (const size of [0, 1, 31]) {
    await assert.rejects(
      run(Buffer.alloc(size, 7), 8),
      /too short to hold a sha256 trailer/,
      `${size} bytes`,
    );
  }
});

test("exactly 32 bytes: the sha256 of nothing passes, anything else fails", async () => {
  const empty = withTrailer(Buffer.alloc(0));
  assert.equal(empty.length, 32);
  const r = await run(empty, 5);
  assert.deepEqual(r.result, { dbSize: 0, sha256: createHash("sha256").update(empty).digest("hex") });
  assert.ok(r.out.equals(empty));
  await assert.rejects(run(Buffer.alloc(32, 1), 32), /does not match/);
});

test("33 bytes and more, the trailer split across chunks at every position: output equals input", async () => {
  for (const dbSize of [1, 2, 31, 32, 33, 4096, 70_000]) {
    const input = withTrailer(sample(dbSize));
    for (const chunk of [1, 3, 31, 32, 33, 64, 4095, 100_000]) {
      const r = await run(input, chunk);
      assert.ok(r.out.equals(input), `db ${dbSize}, chunks of ${chunk}`);
      assert.equal(r.result?.dbSize, dbSize);
    }
  }
});

test("a wrong trailer, or one byte of the database changed, fails at every chunking", async () => {
  const input = withTrailer(sample(5000));
  for (const flip of [0, 2500, 4999, 5000, 5031]) {
    const bad = Buffer.from(input);
    bad[flip] = bad[flip]! ^ 1;
    for (const chunk of [1, 32, 33, 1000]) {
      await assert.rejects(run(bad, chunk), /does not match/, `flip at ${flip}, chunks of ${chunk}`);
    }
  }
});

test("a manifest's sha256 that differs fails even when the trailer matches", async () => {
  const input = withTrailer(sample(1000));
  const check = new TrailerCheck({ expectSha256: "0".repeat(64) });
  await assert.rejects(pipeline(pieces(input, 100), check, collect().sink), /differs from the manifest's/);
});
