import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { TrailerCheck } from "../../src/stages/trailer.ts";
import { collect, pieces } from "./streams.ts";

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
const withTrailer = Buffer.concat([db, sha256(db)]);

for (const size of [1, 31, 32, 33, 512, 1 << 20]) {
  test(`pieces of ${size}: a snapshot with its trailer passes whole, with or without allowMissing`, async () => {
    for (const allowMissing of [false, true]) {
      const { out, result } = await check(withTrailer, size, { allowMissing });
      assert.deepEqual(out, withTrailer);
      assert.deepEqual(result, {
        dbSize: db.length,
        sha256: sha256(withTrailer).toString("hex"),
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
  const changed = Buffer.from(withTrailer);
  changed[100]! ^= 1;
  await assert.rejects(check(changed, 4096, { allowMissing: true }), /cut short/);
  await assert.rejects(
    check(Buffer.alloc(20), 4096, { allowMissing: true }),
    /too short to hold a sha256 trailer/,
  );
});

test("the manifest's sha256 is checked in both cases", async () => {
  const wrong = "0".repeat(64);
  await assert.rejects(check(withTrailer, 4096, { expectSha256: wrong }), /differs from the manifest's/);
  await assert.rejects(
    check(db, 4096, { expectSha256: wrong, allowMissing: true }),
    /differs from the manifest's/,
  );
  const { result } = await check(db, 4096, { expectSha256: sha256(db).toString("hex"), allowMissing: true });
  assert.equal(result.hasTrailer, false);
});
