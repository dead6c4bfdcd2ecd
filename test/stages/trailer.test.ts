/**
 * The trailer check on the sizes around the trailer (0, 31, 32, 33 bytes and larger) and with the trailer
 * split across chunks at every position: the bytes pass through unchanged when the trailer matches, and the
 * stream fails (never ends cleanly) when it does not.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
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
  assert.deepEqual(r.result, {
    dbSize: 0,
    sha256: createHash("sha256").update(empty).digest("hex"),
    hasTrailer: true,
  });
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

// allowMissing: the database alone (a copy of a data dir's member/snap/db), as restore accepts it.

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest();

/** Runs `input` through a TrailerCheck in pieces of `size`; resolves to what came out and the result. */
async function check(
  input: Buffer,
  size: number,
  options: ConstructorParameters<typeof TrailerCheck>[0] = {},
) {
  const stage = new TrailerCheck(options);
  const out = collect();
  await pipeline(pieces(input, size), stage, out.sink);
  return { out: out.result(), result: stage.result! };
}

const db = randomBytes(8 * 512);
const trailered = withTrailer(db);

for (const size of [1, 31, 32, 33, 512, 1 << 20]) {
  test(`pieces of ${size}: a snapshot with its trailer passes whole, with or without allowMissing`, async () => {
    for (const allowMissing of [false, true]) {
      const { out, result } = await check(trailered, size, { allowMissing });
      assert.deepEqual(out, trailered);
      assert.deepEqual(result, {
        dbSize: db.length,
        sha256: sha256(trailered).toString("hex"),
        hasTrailer: true,
      });
    }
  });

  test(`pieces of ${size}: the database alone passes only with allowMissing, unchanged and marked`, async () => {
    await assert.rejects(
      check(db, size),
      /trailer does not match its content: the snapshot is corrupted or was cut short/,
    );
    const { out, result } = await check(db, size, { allowMissing: true });
    assert.deepEqual(out, db);
    assert.deepEqual(result, { dbSize: db.length, sha256: sha256(db).toString("hex"), hasTrailer: false });
  });
}

test("allowMissing still refuses what verify calls damaged: not whole pages, a changed trailer, too short", async () => {
  // Cut short: not a whole number of pages, no trailer either.
  await assert.rejects(check(db.subarray(0, db.length - 100), 4096, { allowMissing: true }), /cut short/);
  // A snapshot whose trailer no longer matches (size is pages + 32).
  const changed = Buffer.from(trailered);
  changed[100]! ^= 1;
  await assert.rejects(check(changed, 4096, { allowMissing: true }), /cut short/);
  await assert.rejects(
    check(Buffer.alloc(20), 4096, { allowMissing: true }),
    /too short to hold a sha256 trailer/,
  );
});

test("the manifest's sha256 is checked in both cases", async () => {
  const wrong = "0".repeat(64);
  await assert.rejects(check(trailered, 4096, { expectSha256: wrong }), /differs from the manifest's/);
  await assert.rejects(
    check(db, 4096, { expectSha256: wrong, allowMissing: true }),
    /differs from the manifest's/,
  );
  const { result } = await check(db, 4096, { expectSha256: sha256(db).toString("hex"), allowMissing: true });
  assert.equal(result.hasTrailer, false);
});
