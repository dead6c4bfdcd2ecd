/**
 * The bbolt page layout (go.etcd.io/bbolt page.go), read straight from the database buffer.
 *
 * A page starts with a 16-byte header: id u64, flags u16, count u16, overflow u32, all little endian.
 * A page with `overflow` > 0 spans `overflow + 1` consecutive pages. Elements follow the header:
 * branch elements (pos u32, ksize u32, pgid u64) or leaf elements (flags u32, pos u32, ksize u32,
 * vsize u32), 16 bytes each; `pos` counts from the element's own address.
 */

export const PAGE_HEADER_SIZE = 16;
export const ELEMENT_SIZE = 16;

export const BRANCH_PAGE = 0x01;
export const LEAF_PAGE = 0x02;
export const META_PAGE = 0x04;
export const FREELIST_PAGE = 0x10;

/** Leaf element flag: the value is a nested bucket header, not data. */
export const BUCKET_LEAF_FLAG = 0x01;

/** Size of the bucket header (root pgid u64, sequence u64) that starts a bucket's value. */
export const BUCKET_HEADER_SIZE = 16;

/** `meta.freelist` when the database does not persist its freelist (etcd runs bbolt with NoFreelistSync). */
export const NO_FREELIST = 2 ** 64 - 1;

/** Reads a little-endian u64 as a number; exact up to 2^53, which covers every page id a file can hold. */
export function readU64(buf: Uint8Array, off: number): number {
  const lo = buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24);
  const hi = buf[off + 4]! | (buf[off + 5]! << 8) | (buf[off + 6]! << 16) | (buf[off + 7]! << 24);
  return (hi >>> 0) * 0x100000000 + (lo >>> 0);
}

/** Reads a little-endian u32. */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

/** Reads a little-endian u16. */
export function readU16(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8);
}

/** A page header as stored. */
export interface PageHeader {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

/** The header of the page that starts at byte `off`. The caller checks that 16 bytes are there. */
export function readPageHeader(buf: Uint8Array, off: number): PageHeader {
  return {
    id: readU64(buf, off),
    flags: readU16(buf, off + 8),
    count: readU16(buf, off + 10),
    overflow: readU32(buf, off + 12),
  };
}

/** The name bbolt gives a page type, for messages. */
export function pageTypeName(flags: number): string {
  switch (flags) {
    case BRANCH_PAGE:
      return "branch";
    case LEAF_PAGE:
      return "leaf";
    case META_PAGE:
      return "meta";
    case FREELIST_PAGE:
      return "freelist";
    default:
      return `unknown<${flags.toString(16).padStart(2, "0")}>`;
  }
}
