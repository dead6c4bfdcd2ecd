/**
 * The source of the CRC-32C WebAssembly module that crc32c-wasm.ts instantiates: a small emitter that writes
 * the module instruction by instruction, with each function's listing in the WebAssembly text format beside
 * the code that emits it. The bytes are committed in crc32c-wasm.ts (running this emitter cold cost 20-40 ms
 * of start-up); test/mvcc/crc32c.test.ts rebuilds them here and fails, printing the new bytes, when they
 * differ. Nothing here is a downloaded or prebuilt binary.
 *
 * What the module computes:
 * - `crc`: slicing by 16 bytes, one 1 KiB table per byte position, for any length.
 * - `crcBlocks`: 16 lanes in SIMD for whole blocks of 16 × LANE_BYTES bytes. Lane j hashes the j-th
 *   LANE_BYTES of the block, from a zero state except lane 0, which continues the running CRC. Each step
 *   takes one byte of every lane (16 bytes loaded per lane are transposed with byte shuffles), and the
 *   byte-at-a-time table lookup `T0[x]` is split by linearity into `L[x & 15] ^ H[x >> 4]`: four 16-entry
 *   byte tables each (one per byte of the 32-bit state, which is kept as four vectors of byte planes), each a
 *   single `i8x16.swizzle`. At the end of a block the lanes are joined in order: appending n zero bytes to a
 *   CRC state is linear too, so `state = shift(state) ^ lane[j]` with `shift` as four 256-entry tables for
 *   n = LANE_BYTES.
 *
 * Memory (the tables are filled by crc32c-wasm.ts after instantiation):
 *   [0, 16 KiB)          slicing tables T0..T15, 256 u32 each (Tk[n]: n followed by k zero bytes)
 *   [16 KiB, 20 KiB)     shift tables S0..S3, 256 u32 each (Sb[n]: the state n << 8b after LANE_BYTES zeros)
 *   [20 KiB, +128)       nibble tables L0..L3, H0..H3, 16 bytes each (byte b of T0[i], of T0[i << 4])
 *   [+128, +192)         scratch: the lanes' final states
 *   [DATA_OFFSET, ...)   data, copied in by the caller
 */

/** Bytes each SIMD lane hashes per block; a block is 16 of them. */
export const LANE_BYTES = 128;
export const BLOCK_BYTES = 16 * LANE_BYTES;
export const SLICE_TABLES = 0;
export const SHIFT_TABLES = 16 * 1024;
export const NIBBLE_TABLES = 20 * 1024;
const SCRATCH = NIBBLE_TABLES + 128;
/** Where data starts in the module's memory: everything before it is tables and scratch. */
export const DATA_OFFSET = 32 * 1024;

const I32 = 0x7f;
const V128 = 0x7b;
const VOID_BLOCK = 0x40;
const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i32Load8U: 0x2d,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32And: 0x71,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
} as const;
/** SIMD instructions: the 0xfd prefix, then the opcode as an unsigned LEB128. */
const simd = {
  load: [0xfd, 0x00],
  store: [0xfd, 0x0b],
  const: [0xfd, 0x0c],
  shuffle: [0xfd, 0x0d],
  swizzle: [0xfd, 0x0e],
  relaxedSwizzle: [0xfd, 0x80, 0x02],
  replaceLane8: [0xfd, 0x17],
  and: [0xfd, 0x4e],
  xor: [0xfd, 0x51],
  shrU8: [0xfd, 0x6d],
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A section: id, then its byte length, then its bytes. */
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** A vector: element count, then the elements' bytes. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const bytes = [...Buffer.from(s, "utf8")];
  return [...uleb(bytes.length), ...bytes];
}

/** Instruction helpers over one function's code. */
class Code {
  readonly bytes: number[] = [];
  emit(...b: readonly number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  get(l: number): this {
    return this.emit(op.localGet, ...uleb(l));
  }
  set(l: number): this {
    return this.emit(op.localSet, ...uleb(l));
  }
  i32(v: number): this {
    return this.emit(op.i32Const, ...sleb(v));
  }
  /** i32.load with a constant offset (align 4). */
  load(offset: number): this {
    return this.emit(op.i32Load, 2, ...uleb(offset));
  }
  v128Load(offset: number): this {
    return this.emit(...simd.load, 4, ...uleb(offset));
  }
  v128Store(offset: number): this {
    return this.emit(...simd.store, 4, ...uleb(offset));
  }
  shuffle(lanes: readonly number[]): this {
    return this.emit(...simd.shuffle, ...lanes);
  }
  /** `(block (loop ... (br_if 1 cond-true-exits) ... (br 0)))`: `exit` pushes an i32 that ends the loop. */
  whileNot(exit: (c: this) => void, body: (c: this) => void): this {
    this.emit(op.block, VOID_BLOCK, op.loop, VOID_BLOCK);
    exit(this);
    this.emit(op.brIf, 1);
    body(this);
    return this.emit(op.br, 0, op.end, op.end);
  }
}

// `crc` locals: 0 c, 1 p, 2 n (parameters); 3 end16, 4 end, 5-8 the four words of a step.
/**
 * (func $crc (param $c i32) (param $p i32) (param $n i32) (result i32)
 *   (local $end16 i32) (local $end i32) (local $w0 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
 *   c = ~c; end = p + n; end16 = p + (n & -16)
 *   while p < end16:
 *     w0 = c ^ load(p); w1 = load(p + 4); w2 = load(p + 8); w3 = load(p + 12)
 *     ;; byte k (k = 0 first) indexes table 15 - k: byte j of word w at (w >>> (8j - 2)) & 1020, or (w << 2) & 1020
 *     c = T15[w0 b0] ^ T14[w0 b1] ^ ... ^ T0[w3 b3]; p += 16
 *   while p < end: c = T0[(c ^ load8_u(p)) & 255] ^ (c >>> 8); p += 1
 *   ~c)
 */
function crcBody(): number[] {
  const [C, P, N, END16, END] = [0, 1, 2, 3, 4];
  const W = [5, 6, 7, 8];
  const k = new Code();
  k.get(C).i32(-1).emit(op.i32Xor).set(C);
  k.get(P).get(N).emit(op.i32Add).set(END);
  k.get(P).get(N).i32(-16).emit(op.i32And, op.i32Add).set(END16);
  k.whileNot(
    (c) => c.get(P).get(END16).emit(op.i32GeU),
    (c) => {
      c.get(C).get(P).load(0).emit(op.i32Xor).set(W[0]!);
      for (let w = 1; w < 4; w++)
        c.get(P)
          .load(4 * w)
          .set(W[w]!);
      for (let b = 0; b < 16; b++) {
        const shift = 8 * (b & 3);
        c.get(W[b >> 2]!);
        if (shift === 0) c.i32(2).emit(op.i32Shl);
        else c.i32(shift - 2).emit(op.i32ShrU);
        c.i32(1020)
          .emit(op.i32And)
          .load(SLICE_TABLES + (15 - b) * 1024);
        if (b > 0) c.emit(op.i32Xor);
      }
      c.set(C);
      c.get(P).i32(16).emit(op.i32Add).set(P);
    },
  );
  k.whileNot(
    (c) => c.get(P).get(END).emit(op.i32GeU),
    (c) => {
      c.get(C).get(P).emit(op.i32Load8U, 0, 0, op.i32Xor).i32(255).emit(op.i32And).i32(2).emit(op.i32Shl);
      c.load(SLICE_TABLES).get(C).i32(8).emit(op.i32ShrU, op.i32Xor).set(C);
      c.get(P).i32(1).emit(op.i32Add).set(P);
    },
  );
  k.get(C).i32(-1).emit(op.i32Xor, op.end);
  return [...vec([[...uleb(6), I32]]), ...k.bytes];
}

const UNPACK_LO8 = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
const UNPACK_HI8 = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];
const UNPACK_LO16 = [0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23];
const UNPACK_HI16 = [8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31];

/**
 * (func $crcBlocks (param $c i32) (param $p i32) (param $blocks i32) (result i32)
 *   (local $r i32) (local $m i32) (local v128 x 43: s0..s3, x, lo, hi, L0..L3, H0..H3, mask, a0..a15, b0..b15)
 *   load L0..L3, H0..H3 from the nibble tables; mask = splat 15; r = ~c
 *   while blocks != 0:
 *     s0..s3 = zero vectors with lane 0 = byte 0..3 of r                     ;; lane 0 continues the CRC
 *     m = 0
 *     while m < LANE_BYTES:
 *       a_j = v128.load offset=j*LANE_BYTES (p + m)  for j = 0..15             ;; 16 bytes of every lane
 *       4 times: b_2i = unpack_lo8(a_i, a_i+8), b_2i+1 = unpack_hi8(a_i, a_i+8); a = b   ;; transpose
 *       for k = 0..15 (a_k: byte k of every lane):
 *         x = s0 ^ a_k; lo = x & mask; hi = x >>> 4 (per byte)
 *         s0 = swz(L0, lo) ^ swz(H0, hi) ^ s1; s1 = swz(L1, lo) ^ swz(H1, hi) ^ s2
 *         s2 = swz(L2, lo) ^ swz(H2, hi) ^ s3; s3 = swz(L3, lo) ^ swz(H3, hi)
 *       m += 16
 *     byte planes s0..s3 -> 16 u32 lane states, stored at SCRATCH (unpack lo/hi 8, then 16)
 *     r = lane 0; for j = 1..15: r = S0[r b0] ^ S1[r b1] ^ S2[r b2] ^ S3[r b3] ^ lane j
 *     p += BLOCK_BYTES; blocks -= 1
 *   ~r)
 */
function crcBlocksBody(swizzle: readonly number[]): number[] {
  const [C, P, BLOCKS, R, M] = [0, 1, 2, 3, 4];
  let next = 5;
  const v = (n: number) => Array.from({ length: n }, () => next++);
  const S = v(4);
  const [X, LO, HI] = v(3);
  const LT = v(4);
  const HT = v(4);
  const [MASK] = v(1);
  let A = v(16);
  let B = v(16);
  const k = new Code();
  for (let b = 0; b < 4; b++) {
    k.i32(0)
      .v128Load(NIBBLE_TABLES + 16 * b)
      .set(LT[b]!);
    k.i32(0)
      .v128Load(NIBBLE_TABLES + 64 + 16 * b)
      .set(HT[b]!);
  }
  k.emit(...simd.const, ...new Array(16).fill(15)).set(MASK!);
  k.get(C).i32(-1).emit(op.i32Xor).set(R);
  k.whileNot(
    (c) => c.get(BLOCKS).emit(op.i32Eqz),
    (c) => {
      for (let b = 0; b < 4; b++) {
        c.emit(...simd.const, ...new Array(16).fill(0)).get(R);
        if (b > 0) c.i32(8 * b).emit(op.i32ShrU);
        c.emit(...simd.replaceLane8, 0).set(S[b]!);
      }
      c.i32(0).set(M);
      c.whileNot(
        (d) => d.get(M).i32(LANE_BYTES).emit(op.i32GeU),
        (d) => {
          for (let j = 0; j < 16; j++)
            d.get(P)
              .get(M)
              .emit(op.i32Add)
              .v128Load(j * LANE_BYTES)
              .set(A[j]!);
          for (let round = 0; round < 4; round++) {
            for (let i = 0; i < 8; i++) {
              d.get(A[i]!)
                .get(A[i + 8]!)
                .shuffle(UNPACK_LO8)
                .set(B[2 * i]!);
              d.get(A[i]!)
                .get(A[i + 8]!)
                .shuffle(UNPACK_HI8)
                .set(B[2 * i + 1]!);
            }
            [A, B] = [B, A];
          }
          for (let byte = 0; byte < 16; byte++) {
            d.get(S[0]!)
              .get(A[byte]!)
              .emit(...simd.xor)
              .set(X!);
            d.get(X!)
              .get(MASK!)
              .emit(...simd.and)
              .set(LO!);
            d.get(X!)
              .i32(4)
              .emit(...simd.shrU8)
              .set(HI!);
            for (let b = 0; b < 4; b++) {
              d.get(LT[b]!)
                .get(LO!)
                .emit(...swizzle);
              d.get(HT[b]!)
                .get(HI!)
                .emit(...swizzle, ...simd.xor);
              if (b < 3) d.get(S[b + 1]!).emit(...simd.xor);
              d.set(S[b]!);
            }
          }
          d.get(M).i32(16).emit(op.i32Add).set(M);
        },
      );
      // Byte planes to u32 lanes: (s0, s1) and (s2, s3) interleaved by byte, then the pairs by 16 bits.
      c.get(S[0]!).get(S[1]!).shuffle(UNPACK_LO8).set(A[0]!);
      c.get(S[0]!).get(S[1]!).shuffle(UNPACK_HI8).set(A[1]!);
      c.get(S[2]!).get(S[3]!).shuffle(UNPACK_LO8).set(A[2]!);
      c.get(S[2]!).get(S[3]!).shuffle(UNPACK_HI8).set(A[3]!);
      c.i32(0).get(A[0]!).get(A[2]!).shuffle(UNPACK_LO16).v128Store(SCRATCH);
      c.i32(0)
        .get(A[0]!)
        .get(A[2]!)
        .shuffle(UNPACK_HI16)
        .v128Store(SCRATCH + 16);
      c.i32(0)
        .get(A[1]!)
        .get(A[3]!)
        .shuffle(UNPACK_LO16)
        .v128Store(SCRATCH + 32);
      c.i32(0)
        .get(A[1]!)
        .get(A[3]!)
        .shuffle(UNPACK_HI16)
        .v128Store(SCRATCH + 48);
      c.i32(0).load(SCRATCH).set(R);
      for (let j = 1; j < 16; j++) {
        c.get(R).i32(2).emit(op.i32Shl).i32(1020).emit(op.i32And).load(SHIFT_TABLES);
        c.get(R)
          .i32(6)
          .emit(op.i32ShrU)
          .i32(1020)
          .emit(op.i32And)
          .load(SHIFT_TABLES + 1024)
          .emit(op.i32Xor);
        c.get(R)
          .i32(14)
          .emit(op.i32ShrU)
          .i32(1020)
          .emit(op.i32And)
          .load(SHIFT_TABLES + 2048)
          .emit(op.i32Xor);
        c.get(R)
          .i32(22)
          .emit(op.i32ShrU)
          .i32(1020)
          .emit(op.i32And)
          .load(SHIFT_TABLES + 3072)
          .emit(op.i32Xor);
        c.i32(0)
          .load(SCRATCH + 4 * j)
          .emit(op.i32Xor)
          .set(R);
      }
      c.get(P).i32(BLOCK_BYTES).emit(op.i32Add).set(P);
      c.get(BLOCKS).i32(1).emit(op.i32Sub).set(BLOCKS);
    },
  );
  k.get(R).i32(-1).emit(op.i32Xor, op.end);
  return [
    ...vec([
      [...uleb(2), I32],
      [...uleb(next - 5), V128],
    ]),
    ...k.bytes,
  ];
}

/**
 * The whole module: one memory of one page (grown by createWasmCrc), `crc` and, unless `simd` is null,
 * `crcBlocks` with the relaxed or the plain swizzle, all exported.
 */
export type ModuleVariant = "relaxed" | "plain" | null;

export function crcModuleBytes(options: { simd: ModuleVariant }): Uint8Array {
  const fns = [crcBody()];
  const names = ["crc"];
  if (options.simd) {
    fns.push(crcBlocksBody(options.simd === "relaxed" ? simd.relaxedSwizzle : simd.swizzle));
    names.push("crcBlocks");
  }
  const type = section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])]]));
  const func = section(3, vec(fns.map(() => uleb(0))));
  const memory = section(5, vec([[0x00, ...uleb(1)]]));
  const exports = section(
    7,
    vec([[...name("memory"), 0x02, ...uleb(0)], ...names.map((n, i) => [...name(n), 0x00, ...uleb(i)])]),
  );
  const code = section(10, vec(fns.map((body) => [...uleb(body.length), ...body])));
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  return Uint8Array.from([...header, ...type, ...func, ...memory, ...exports, ...code]);
}
