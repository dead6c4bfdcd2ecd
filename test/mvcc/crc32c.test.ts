import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { crc32c, crc32cUpdate } from "../../src/mvcc/crc32c.ts";

/** Bit-at-a-time CRC-32C, the definition the table-driven code must agree with. */
function reference(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe("crc32c", () => {
  test("published check values (RFC 3720 appendix B.4 and the '123456789' check)", () => {
    assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  });

  test("any split, offset and alignment gives the bit-at-a-time result", () => {
    const data = randomBytes(1000);
    const want = reference(data.subarray(3, 977));
    for (const split of [3, 4, 5, 10, 11, 19, 500, 976]) {
      assert.equal(
        crc32cUpdate(crc32cUpdate(0, data, 3, split), data, split, 977),
        want,
        `split at ${split}`,
      );
    }
    for (let off = 0; off < 8; off++) {
      const view = data.subarray(off, off + 100);
      assert.equal(crc32c(view), reference(view), `offset ${off}`);
    }
  });
});
