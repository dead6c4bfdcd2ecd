import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  crc32c,
  crc32cCombine,
  crc32cMemory,
  crc32cUpdate,
  jsUpdate,
  wasmUpdate,
} from "../../src/mvcc/crc32c.ts";
import {
  BLOCK_BYTES,
  createWasmCrc,
  LANE_BYTES,
  moduleBytes,
  webAssembly,
} from "../../src/mvcc/crc32c-wasm.ts";
import { crcModuleBytes } from "../../src/mvcc/crc32c-wasm-emit.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

/** Bit-at-a-time CRC-32C, the definition the table-driven code must agree with. */
function reference(buf: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
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

  test("combining CRCs agrees with hashing the joined bytes, for lengths of every bit up to 2^22", () => {
    const a = Buffer.from("etcd snapshot status hashes every key and value");
    const zeros = Buffer.alloc((1 << 22) + 12345);
    for (const n of [1, 2, 3, 7, 100, 4096, 65537, 1 << 20, (1 << 22) + 12345]) {
      const b = zeros.subarray(0, n);
      b[n - 1] = 0x5a;
      const joined = crc32cUpdate(crc32cUpdate(0, a), b);
      assert.equal(crc32cCombine(crc32c(a), crc32c(b), n), joined, `length ${n}`);
      b[n - 1] = 0;
    }
  });

  test("ranges of crc32cMemory are hashed in place with the same result", () => {
    const random = new SeededRandom(testSeed(7));
    const memory = crc32cMemory(3 * BLOCK_BYTES + 1000);
    assert.ok(memory, "WebAssembly memory");
    memory.set(random.bytes(memory.length));
    const copy = Buffer.from(memory);
    for (const [start, end] of [
      [0, memory.length],
      [1, 300],
      [17, 17 + BLOCK_BYTES],
      [BLOCK_BYTES - 5, 3 * BLOCK_BYTES + 3],
      [100, 100],
    ] as const) {
      const crc = random.int(0, 0xffffffff);
      assert.equal(crc32cUpdate(crc, memory, start, end), reference(copy.subarray(start, end), crc));
      const view = memory.subarray(start);
      assert.equal(crc32cUpdate(crc, view, 0, end - start), reference(copy.subarray(start, end), crc));
    }
  });

  test("the committed module bytes are what the emitter writes", () => {
    for (const [simd, constant] of [
      ["relaxed", "RELAXED_MODULE"],
      [null, "SCALAR_MODULE"],
    ] as const) {
      const emitted = Buffer.from(crcModuleBytes({ simd }));
      const committed = Buffer.from(moduleBytes(simd));
      const lines = JSON.stringify(emitted.toString("base64").match(/.{1,100}/g));
      assert.ok(
        committed.equals(emitted),
        `${constant} in src/mvcc/crc32c-wasm.ts differs from crc32c-wasm-emit.ts's output; if the emitter changed on purpose, set it to ${lines}`,
      );
    }
  });

  test("the WebAssembly modules are valid and export their memory and functions", () => {
    assert.ok(webAssembly, "Node runs WebAssembly");
    for (const simd of ["relaxed", "plain", null] as const) {
      const bytes = crcModuleBytes({ simd });
      assert.ok(webAssembly.validate(bytes), `module (simd ${simd}) validates`);
      const exports = webAssembly.Module.exports(new webAssembly.Module(bytes));
      const want = simd
        ? ["crc:function", "crcBlocks:function", "memory:memory"]
        : ["crc:function", "memory:memory"];
      assert.deepEqual(exports.map((e) => `${e.name}:${e.kind}`).sort(), want);
    }
  });

  test("each WebAssembly variant agrees with the bit-at-a-time CRC around block and lane sizes", () => {
    const random = new SeededRandom(testSeed(2022));
    const data = random.bytes(5 * BLOCK_BYTES + 100);
    try {
      for (const simd of ["relaxed", "plain", false] as const) {
        // Room for two blocks only, so that longer ranges are staged piece by piece.
        const w = createWasmCrc(2 * BLOCK_BYTES, { simd });
        assert.ok(w, `instance (simd ${simd})`);
        assert.equal(w.crcBlocks === null, simd === false);
        const lengths = [0, 1, 16, LANE_BYTES - 1, LANE_BYTES, BLOCK_BYTES - 1, BLOCK_BYTES, BLOCK_BYTES + 1];
        for (const length of [...lengths, 2 * BLOCK_BYTES + 17, 5 * BLOCK_BYTES + 99]) {
          const off = random.int(0, data.length - length);
          const crc = random.int(0, 0xffffffff);
          const want = reference(data.subarray(off, off + length), crc);
          const got = wasmUpdate(w, crc, data, off, off + length, 2 * BLOCK_BYTES);
          assert.equal(got, want, `simd ${simd}, length ${length} at ${off}, from ${crc}`);
        }
      }
    } catch (err) {
      console.error(`seed ${random.seed} (rerun with ETCD_BACKUP_TEST_SEED=${random.seed})`);
      throw err;
    }
  });

  test("both loops agree with the bit-at-a-time CRC at every length, offset and chained split", () => {
    const random = new SeededRandom(testSeed(22));
    const data = random.bytes(3 * 256 * 1024 + 77);
    try {
      // Lengths around the JavaScript/WebAssembly threshold, the 16-byte step and the 256 KiB staging area.
      const lengths = [
        0,
        1,
        15,
        16,
        17,
        255,
        256,
        257,
        271,
        272,
        4096 + 3,
        262143,
        262144,
        262145,
        data.length,
      ];
      for (const length of lengths) {
        for (const off of [0, 1, 3, 7]) {
          if (off + length > data.length) continue;
          const want = reference(data.subarray(off, off + length));
          assert.equal(
            crc32cUpdate(0, data, off, off + length),
            want,
            `crc32cUpdate length ${length} offset ${off}`,
          );
          assert.equal(jsUpdate(0, data, off, off + length), want, `jsUpdate length ${length} offset ${off}`);
        }
      }
      for (let i = 0; i < 40; i++) {
        const a = random.int(0, data.length);
        const b = random.int(a, data.length);
        const c = random.int(b, data.length);
        const chained = crc32cUpdate(crc32cUpdate(0, data, a, b), data, b, c);
        assert.equal(chained, reference(data.subarray(a, c)), `[${a}, ${b}) then [${b}, ${c})`);
        const combined = crc32cCombine(crc32cUpdate(0, data, a, b), crc32cUpdate(0, data, b, c), c - b);
        assert.equal(combined, chained, `combine of [${a}, ${b}) and [${b}, ${c})`);
      }
    } catch (err) {
      console.error(`seed ${random.seed} (rerun with ETCD_BACKUP_TEST_SEED=${random.seed})`);
      throw err;
    }
  });
});
