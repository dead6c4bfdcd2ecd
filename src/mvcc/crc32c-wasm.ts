/**
 * CRC-32C in WebAssembly, slicing by 16 bytes. WebAssembly has no CRC instruction, but the same table-driven
 * loop as crc32c.ts runs about twice as fast compiled by V8 from WebAssembly as from JavaScript: the table
 * reads and the four 32-bit loads per step are plain memory loads, with no typed-array bounds checks and no
 * deoptimisation.
 *
 * The module is not a committed binary: `crcModuleBytes()` below writes its few hundred bytes, instruction
 * by instruction, when this file is loaded (well under a millisecond). The function it holds, in the
 * WebAssembly text format:
 *
 *   (module
 *     (memory (export "memory") 1)          ;; [0, 16 KiB): tables T0..T15, 256 u32 each; then data
 *     (func (export "crc") (param $c i32) (param $p i32) (param $n i32) (result i32)
 *       (local $end16 i32) (local $end i32) (local $a i32) (local $b i32) (local $d i32) (local $e i32)
 *       (local.set $c (i32.xor (local.get $c) (i32.const -1)))
 *       (local.set $end (i32.add (local.get $p) (local.get $n)))
 *       (local.set $end16 (i32.add (local.get $p) (i32.and (local.get $n) (i32.const -16))))
 *       (block $done16 (loop $step16
 *         (br_if $done16 (i32.ge_u (local.get $p) (local.get $end16)))
 *         (local.set $a (i32.xor (local.get $c) (i32.load (local.get $p))))
 *         (local.set $b (i32.load offset=4 (local.get $p)))
 *         (local.set $d (i32.load offset=8 (local.get $p)))
 *         (local.set $e (i32.load offset=12 (local.get $p)))
 *         ;; byte k of the 16 (k = 0 first) indexes table 15 - k; index * 4 = (word >>> (8j - 2)) & 1020
 *         (local.set $c (i32.xor (i32.load offset=15360 (i32.and (i32.shl (local.get $a) (i32.const 2)) (i32.const 1020)))
 *                       (i32.xor (i32.load offset=14336 (i32.and (i32.shr_u (local.get $a) (i32.const 6)) (i32.const 1020)))
 *                       ... the other 14 lookups: a bytes 2, 3; b bytes 0-3; d bytes 0-3; e bytes 0-3 ...)))
 *         (local.set $p (i32.add (local.get $p) (i32.const 16)))
 *         (br $step16)))
 *       (block $done (loop $step
 *         (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
 *         (local.set $c (i32.xor (i32.load (i32.shl (i32.and (i32.xor (local.get $c) (i32.load8_u (local.get $p)))
 *                                                           (i32.const 255)) (i32.const 2)))
 *                                (i32.shr_u (local.get $c) (i32.const 8))))
 *         (local.set $p (i32.add (local.get $p) (i32.const 1)))
 *         (br $step)))
 *       (i32.xor (local.get $c) (i32.const -1))))
 *
 * test/mvcc/crc32c.test.ts checks the emitted bytes against this listing's structure (a decoded
 * instruction count per opcode) and every result against a bit-at-a-time CRC.
 */

/** Bytes of the 16 tables at the start of the module's memory; data is staged after them. */
export const TABLE_BYTES = 16 * 256 * 4;

/**
 * The part of the WebAssembly JavaScript API used here (the project's TypeScript libs do not declare it).
 * Absent when Node runs without WebAssembly (`--jitless`).
 */
export interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: { new (bytes: Uint8Array): object; exports(module: object): { name: string; kind: string }[] };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

export const webAssembly: WebAssemblyApi | undefined = (globalThis as { WebAssembly?: WebAssemblyApi })
  .WebAssembly;

/** The instantiated module: `crc(crc, ptr, length)` over its own memory, and that memory. */
export interface CrcInstance {
  crc: (crc: number, ptr: number, length: number) => number;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

/** Compiles and instantiates the module; null without WebAssembly. */
export function instantiateCrc(): CrcInstance | null {
  if (!webAssembly) return null;
  const instance = new webAssembly.Instance(new webAssembly.Module(crcModuleBytes()), {});
  return instance.exports as unknown as CrcInstance;
}

const I32 = 0x7f;
const op = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  localGet: 0x20,
  localSet: 0x21,
  i32Load: 0x28,
  i32Load8U: 0x2d,
  i32Const: 0x41,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrU: 0x76,
} as const;
const VOID_BLOCK = 0x40;

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

// Locals: 0 c, 1 p, 2 n (parameters); 3 end16, 4 end, 5 a, 6 b, 7 d, 8 e.
const C = 0;
const P = 1;
const N = 2;
const END16 = 3;
const END = 4;
const WORDS = [5, 6, 7, 8];

/** The body of `crc`, as listed in the file comment. */
function crcBody(): number[] {
  const get = (l: number) => [op.localGet, l];
  const set = (l: number) => [op.localSet, l];
  const i32 = (v: number) => [op.i32Const, ...sleb(v)];
  const load = (offset: number) => [op.i32Load, 2, ...uleb(offset)];
  const code: number[] = [];
  code.push(...get(C), ...i32(-1), op.i32Xor, ...set(C));
  code.push(...get(P), ...get(N), op.i32Add, ...set(END));
  code.push(...get(P), ...get(N), ...i32(-16), op.i32And, op.i32Add, ...set(END16));

  code.push(op.block, VOID_BLOCK, op.loop, VOID_BLOCK);
  code.push(...get(P), ...get(END16), op.i32GeU, op.brIf, 1);
  code.push(...get(C), ...get(P), ...load(0), op.i32Xor, ...set(WORDS[0]!));
  for (let w = 1; w < 4; w++) code.push(...get(P), ...load(4 * w), ...set(WORDS[w]!));
  // 16 lookups, xored together: byte k of the 16 (word k >> 2, byte k & 3) indexes table 15 - k.
  for (let k = 0; k < 16; k++) {
    const word = WORDS[k >> 2]!;
    const shift = 8 * (k & 3);
    code.push(...get(word));
    if (shift === 0) code.push(...i32(2), op.i32Shl);
    else code.push(...i32(shift - 2), op.i32ShrU);
    code.push(...i32(1020), op.i32And, ...load((15 - k) * 1024));
    if (k > 0) code.push(op.i32Xor);
  }
  code.push(...set(C));
  code.push(...get(P), ...i32(16), op.i32Add, ...set(P));
  code.push(op.br, 0, op.end, op.end);

  code.push(op.block, VOID_BLOCK, op.loop, VOID_BLOCK);
  code.push(...get(P), ...get(END), op.i32GeU, op.brIf, 1);
  code.push(
    ...get(C),
    ...get(P),
    op.i32Load8U,
    0,
    0,
    op.i32Xor,
    ...i32(255),
    op.i32And,
    ...i32(2),
    op.i32Shl,
  );
  code.push(...load(0), ...get(C), ...i32(8), op.i32ShrU, op.i32Xor, ...set(C));
  code.push(...get(P), ...i32(1), op.i32Add, ...set(P));
  code.push(op.br, 0, op.end, op.end);

  code.push(...get(C), ...i32(-1), op.i32Xor, op.end);
  const locals = vec([[...uleb(6), I32]]);
  return [...locals, ...code];
}

/** The whole module: one memory of one page (growable), one function, both exported. */
export function crcModuleBytes(): Uint8Array {
  const type = section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])]]));
  const func = section(3, vec([uleb(0)]));
  const memory = section(5, vec([[0x00, ...uleb(1)]]));
  const exports = section(
    7,
    vec([
      [...name("memory"), 0x02, ...uleb(0)],
      [...name("crc"), 0x00, ...uleb(0)],
    ]),
  );
  const body = crcBody();
  const code = section(10, vec([[...uleb(body.length), ...body]]));
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...type,
    ...func,
    ...memory,
    ...exports,
    ...code,
  ]);
}
