import { PAGE_HEADER_SIZE, readU32, readU64 } from "./page.ts";

/**
 * The bbolt meta page (go.etcd.io/bbolt db.go `meta`), stored in pages 0 and 1 right after the page header:
 * magic u32, version u32, pageSize u32, flags u32, root bucket {root pgid u64, sequence u64},
 * freelist pgid u64, high-water pgid u64, txid u64, checksum u64. The checksum is FNV-1a 64 over the
 * 56 bytes before it. Writers alternate between the two pages; readers take the valid one with the higher txid.
 */

export const BOLT_MAGIC = 0xed0cdaed;
export const BOLT_VERSION = 2;
const META_CHECKSUMMED = 56;
const META_SIZE = 64;

export interface Meta {
  /** 0 or 1: which meta page this is. */
  page: number;
  magic: number;
  version: number;
  pageSize: number;
  flags: number;
  /** Root page of the root bucket (whose keys are the top-level bucket names). */
  root: number;
  sequence: bigint;
  /** Freelist page id, or NO_FREELIST. */
  freelist: number;
  /** High-water mark: the first page id past the end of the used file. */
  pgid: number;
  txid: bigint;
  checksum: bigint;
  /** Why this meta page is unusable, or null when it is valid. */
  problem: string | null;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

function fnv1a64(buf: Uint8Array, start: number, end: number): bigint {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = ((h ^ BigInt(buf[i]!)) * FNV_PRIME) & MASK64;
  return h;
}

/** Parses the meta page `page` (0 or 1) that starts at byte `off`. Never throws: problems land in `problem`. */
export function readMeta(buf: Uint8Array, page: number, off: number): Meta {
  const m = off + PAGE_HEADER_SIZE;
  if (m + META_SIZE > buf.length) {
    return {
      page,
      magic: 0,
      version: 0,
      pageSize: 0,
      flags: 0,
      root: 0,
      sequence: 0n,
      freelist: 0,
      pgid: 0,
      txid: 0n,
      checksum: 0n,
      problem: "truncated",
    };
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const meta: Meta = {
    page,
    magic: readU32(buf, m),
    version: readU32(buf, m + 4),
    pageSize: readU32(buf, m + 8),
    flags: readU32(buf, m + 12),
    root: readU64(buf, m + 16),
    sequence: view.getBigUint64(m + 24, true),
    freelist: readU64(buf, m + 32),
    pgid: readU64(buf, m + 40),
    txid: view.getBigUint64(m + 48, true),
    checksum: view.getBigUint64(m + 56, true),
    problem: null,
  };
  if (meta.magic !== BOLT_MAGIC) meta.problem = `invalid magic 0x${meta.magic.toString(16)}`;
  else if (meta.version !== BOLT_VERSION) meta.problem = `unsupported version ${meta.version}`;
  else if (fnv1a64(buf, m, m + META_CHECKSUMMED) !== meta.checksum) meta.problem = "checksum mismatch";
  return meta;
}

/** Page sizes tried when meta page 0 is unreadable and the size must be found from meta page 1. */
const CANDIDATE_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536, 1024, 2048];

/**
 * Reads both meta pages. Page 0 gives the page size; when it is damaged, page 1 is looked for at the
 * usual page sizes (as bbolt does when it falls back to the second meta).
 */
export function readMetas(buf: Uint8Array): [Meta, Meta] {
  const m0 = readMeta(buf, 0, 0);
  if (m0.problem === null) return [m0, readMeta(buf, 1, m0.pageSize)];
  for (const size of CANDIDATE_PAGE_SIZES) {
    const m1 = readMeta(buf, 1, size);
    if (m1.problem === null && m1.pageSize === size) return [m0, m1];
  }
  return [m0, readMeta(buf, 1, 4096)];
}

/** The meta a reader uses: the valid one with the higher txid. Throws when neither is valid. */
export function chooseMeta(metas: [Meta, Meta]): Meta {
  const [a, b] = metas[1].txid > metas[0].txid ? [metas[1], metas[0]] : [metas[0], metas[1]];
  if (a.problem === null) return a;
  if (b.problem === null) return b;
  throw new Error(`no valid meta page: page 0 ${metas[0].problem}, page 1 ${metas[1].problem}`);
}
