import { BLOCK_BYTES, createWasmCrc, DATA_OFFSET, type WasmCrc } from "./crc32c-wasm.ts";

/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum `etcdutl snapshot status` reports.
 * node:zlib only offers the IEEE polynomial, so this is table driven: status hashes every key and value of
 * the database, and this loop was a third of its time. Ranges of WASM_MIN bytes and more go to the
 * WebAssembly loops of crc32c-wasm.ts: 16 SIMD lanes over whole 2 KiB blocks (about 3x the JavaScript loop
 * on data in its memory, 2x with the copy into it), slicing by 16 for the rest. Data in `crc32cMemory` is
 * hashed where it lies; any other buffer is copied in, STAGE_BYTES at a time. Shorter ranges, where a call
 * and a copy cost more than they save, and every range where WebAssembly is unavailable (node --jitless),
 * run the JavaScript slicing-by-8 loop below. Figures: bench/crc32c.ts.
 */

const POLY = 0x82f63b78;

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t0[n]!;
    for (let t = 1; t < 8; t++) {
      c = t0[c & 0xff]! ^ (c >>> 8);
      tables[t]![n] = c >>> 0;
    }
  }
  return tables;
})();

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Status hashes many short ranges of the same buffer: keep the 32-bit view of the last one.
let wordsOf: ArrayBufferLike | null = null;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

function wordView(buf: Uint8Array): Uint32Array<ArrayBufferLike> | null {
  if (!LITTLE_ENDIAN) return null;
  if (wordsOf !== buf.buffer) {
    wordsOf = buf.buffer;
    words = new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
  }
  return words;
}

/** Below this many bytes a range is hashed in JavaScript (measured: bench/crc32c.ts). */
const WASM_MIN = 256;
/** Bytes of the WebAssembly memory a range is copied into, piece by piece (a whole number of blocks). */
const STAGE_BYTES = 64 * BLOCK_BYTES;

const wasm: WasmCrc | null = (() => {
  try {
    return createWasmCrc(STAGE_BYTES);
  } catch {
    // WebAssembly refused: the JavaScript loop computes the same checksum.
    return null;
  }
})();

/**
 * Continues a CRC-32C over `buf[start, end)`. Pass the previous result as `crc` (0 to begin);
 * the value returned is the finished checksum so far, as Go's `hash.Hash32.Sum32` would give it.
 */
export function crc32cUpdate(crc: number, buf: Uint8Array, start = 0, end = buf.length): number {
  if (wasm !== null && end - start >= WASM_MIN) {
    const own = ownMemories.get(buf.buffer);
    if (own !== undefined) return inPlaceUpdate(own, crc, buf.byteOffset + start, end - start);
    return wasmUpdate(wasm, crc, buf, start, end);
  }
  return jsUpdate(crc, buf, start, end);
}

/** The instances of crc32cMemory's buffers, by their memory. */
const ownMemories = new WeakMap<ArrayBufferLike, WasmCrc>();

/**
 * `bytes` of memory that crc32cUpdate hashes where it lies, without copying it into the WebAssembly module
 * first: the memory of a WebAssembly instance of its own (about 40 KiB of tables besides), which lives as long
 * as the returned buffer. The bbolt file reader keeps its windows here, so that status hashes the database
 * as it was read. Null without WebAssembly; callers then allocate an ordinary buffer.
 */
export function crc32cMemory(bytes: number): Buffer | null {
  if (wasm === null) return null;
  let w: WasmCrc | null;
  try {
    w = createWasmCrc(bytes);
  } catch {
    // No room for another WebAssembly memory (address space limits): the caller's own buffer does as well.
    return null;
  }
  if (w === null) return null;
  ownMemories.set(w.memory.buffer, w);
  return Buffer.from(w.memory.buffer, DATA_OFFSET, bytes);
}

/** The WebAssembly loops over `length` bytes at `ptr` of the instance's own memory. */
function inPlaceUpdate(w: WasmCrc, crc: number, ptr: number, length: number): number {
  let c = crc;
  let done = 0;
  if (w.crcBlocks !== null && length >= BLOCK_BYTES) {
    const blocks = Math.floor(length / BLOCK_BYTES);
    c = w.crcBlocks(c, ptr, blocks);
    done = blocks * BLOCK_BYTES;
  }
  if (done < length) c = w.crc(c, ptr + done, length - done);
  return c >>> 0;
}

/**
 * The WebAssembly loops over `buf[start, end)`, copied into its memory STAGE_BYTES at a time: whole blocks
 * through the SIMD lanes, the rest through slicing by 16.
 */
export function wasmUpdate(
  w: WasmCrc,
  crc: number,
  buf: Uint8Array,
  start: number,
  end: number,
  stage = STAGE_BYTES,
): number {
  let c = crc;
  const memory = w.memory;
  for (let i = start; i < end; ) {
    const n = Math.min(end - i, stage);
    memory.set(buf.subarray(i, i + n), DATA_OFFSET);
    let done = 0;
    if (w.crcBlocks !== null && n >= BLOCK_BYTES) {
      const blocks = Math.floor(n / BLOCK_BYTES);
      c = w.crcBlocks(c, DATA_OFFSET, blocks);
      done = blocks * BLOCK_BYTES;
    }
    if (done < n) c = w.crc(c, DATA_OFFSET + done, n - done);
    i += n;
  }
  return c >>> 0;
}

/** The JavaScript slicing-by-8 loop (exported for the tests and the bench, which compare both loops). */
export function jsUpdate(crc: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let c = ~crc >>> 0;
  let i = start;
  const fast = end - 8;
  const w32 = end - start >= 16 ? wordView(buf) : null;
  if (w32) {
    // Reading two aligned 32-bit words instead of eight bytes is most of the speed-up of slicing-by-8 here.
    while ((i + buf.byteOffset) & 3) c = T0[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
    let w = (i + buf.byteOffset) >>> 2;
    while (i <= fast) {
      const a = c ^ w32[w]!;
      const b = w32[w + 1]!;
      c =
        T7[a & 0xff]! ^
        T6[(a >>> 8) & 0xff]! ^
        T5[(a >>> 16) & 0xff]! ^
        T4[a >>> 24]! ^
        T3[b & 0xff]! ^
        T2[(b >>> 8) & 0xff]! ^
        T1[(b >>> 16) & 0xff]! ^
        T0[b >>> 24]!;
      i += 8;
      w += 2;
    }
  } else {
    while (i <= fast) {
      const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
      c =
        T7[a & 0xff]! ^
        T6[(a >>> 8) & 0xff]! ^
        T5[(a >>> 16) & 0xff]! ^
        T4[a >>> 24]! ^
        T3[buf[i + 4]!]! ^
        T2[buf[i + 5]!]! ^
        T1[buf[i + 6]!]! ^
        T0[buf[i + 7]!]!;
      i += 8;
    }
  }
  while (i < end) c = T0[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The CRC-32C of a whole buffer. */
export function crc32c(buf: Uint8Array): number {
  return crc32cUpdate(0, buf);
}

/** (a * b) mod P over GF(2), both reflected 32-bit polynomials. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  let bb = b >>> 0;
  for (;;) {
    if (a & m) {
      p ^= bb;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    bb = bb & 1 ? (bb >>> 1) ^ POLY : bb >>> 1;
  }
  return p >>> 0;
}

// X2N[k] = x^(2^k) mod P.
const X2N = new Uint32Array(32);
X2N[0] = 0x40000000;
for (let k = 1; k < 32; k++) X2N[k] = multModP(X2N[k - 1]!, X2N[k - 1]!);

/** x^(n * 2^k) mod P. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000;
  let kk = k;
  let nn = n;
  while (nn > 0) {
    if (nn % 2 === 1) p = multModP(X2N[kk & 31]!, p);
    nn = Math.floor(nn / 2);
    kk++;
  }
  return p;
}

/**
 * The CRC-32C of A followed by B, from the CRC of A, the CRC of B and B's length: lets a hash over a long
 * sequence be assembled from pieces computed in any order (the snapshot's pages arrive in file order, the
 * status hash runs in key order).
 */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB === 0) return crcA >>> 0;
  if (lengthB >= 2 ** 32) return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ crcB) >>> 0;
  // A followed by lengthB zero bytes, one table step per set bit of lengthB; then B's own CRC added.
  let c = crcA >>> 0;
  for (let k = 0, n = lengthB; n !== 0; k++, n >>>= 1) {
    if (n & 1) {
      const t = zeroShiftTable(k);
      c = t[c & 0xff]! ^ t[256 + ((c >>> 8) & 0xff)]! ^ t[512 + ((c >>> 16) & 0xff)]! ^ t[768 + (c >>> 24)]!;
    }
  }
  return (c ^ crcB) >>> 0;
}

/**
 * ZERO_SHIFT[k]: the CRC state after 2^k zero bytes, as four 256-entry tables, one per byte of the state
 * (appending zeros is linear in the state). Built on first use, each from the one before (k - 1 twice):
 * the status of a snapshot combines one CRC per leaf page, and multModP's bit loop per combine was a quarter
 * of the streamed status's time.
 */
const ZERO_SHIFT: Uint32Array[] = [];

function zeroShiftTable(k: number): Uint32Array {
  for (let j = ZERO_SHIFT.length; j <= k; j++) {
    const t = new Uint32Array(1024);
    const prev = ZERO_SHIFT[j - 1];
    const shift = (c: number): number =>
      prev
        ? prev[c & 0xff]! ^
          prev[256 + ((c >>> 8) & 0xff)]! ^
          prev[512 + ((c >>> 16) & 0xff)]! ^
          prev[768 + (c >>> 24)]!
        : T0[c & 0xff]! ^ (c >>> 8);
    for (let b = 0; b < 4; b++) {
      for (let v = 0; v < 256; v++) {
        const c = (v << (8 * b)) >>> 0;
        t[256 * b + v] = (prev ? shift(shift(c)) : shift(c)) >>> 0;
      }
    }
    ZERO_SHIFT.push(t);
  }
  return ZERO_SHIFT[k]!;
}
