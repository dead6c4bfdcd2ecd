import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { bech32Decode, bech32Encode } from "../../src/age/bech32.ts";

test("BIP 173 valid strings decode", () => {
  assert.deepEqual(bech32Decode("A12UEL5L"), { hrp: "a", data: new Uint8Array() });
  const d = bech32Decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw");
  assert.equal(d?.hrp, "abcdef");
  assert.equal(d?.data.length, 20);
});

test("invalid strings are refused", () => {
  assert.equal(bech32Decode("A12uEL5L"), null, "mixed case");
  assert.equal(bech32Decode("a12uel5m"), null, "checksum");
  assert.equal(bech32Decode("a1b2uel5l"), null, "character outside the charset");
  assert.equal(bech32Decode("1qzzfhee"), null, "empty hrp");
  assert.equal(bech32Decode("a1qqqqq"), null, "too short for a checksum");
});

test("round trips and age's key shapes", () => {
  for (let i = 0; i < 50; i++) {
    const data = randomBytes(32);
    const lower = bech32Encode("age", data);
    assert.match(lower, /^age1[02-9ac-hj-np-z]{58}$/);
    assert.deepEqual(bech32Decode(lower)?.data, new Uint8Array(data));
    const upper = bech32Encode("age-secret-key-", data, true);
    assert.match(upper, /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
    assert.equal(bech32Decode(upper)?.hrp, "age-secret-key-");
  }
});
