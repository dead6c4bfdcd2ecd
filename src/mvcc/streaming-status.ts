import { chooseMeta, type Meta, readMeta } from "../bbolt/meta.ts";
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  ELEMENT_SIZE,
  LEAF_PAGE,
  PAGE_HEADER_SIZE,
  readPageHeader,
  readU32,
  readU64,
} from "../bbolt/page.ts";
import { crc32cCombine, crc32cUpdate } from "./crc32c.ts";
import type { SnapshotStatus } from "./status.ts";

/** What one leaf page contributes to the status: its slice of the hash, its keys, its buckets. */
interface LeafSummary {
  /** CRC-32C of the page's keys and (non-bucket) values in order, and the number of bytes hashed. */
  crc: number;
  length: number;
  count: number;
  /** Main revision of the page's last key when it looks like an MVCC revision key (17 or 18 bytes). */
  lastRevision: number | null;
  buckets: { name: Buffer; root: number; inline: LeafSummary | null }[];
}

/** Overflowing pages longer than this are not plausible etcd pages (values are capped well below). */
const MAX_OVERFLOW_BYTES = 64 * 1024 * 1024;

/**
 * Computes `etcdutl snapshot status` (hash, revision, total keys, total size) from a snapshot as it streams
 * by, without holding it: every page that could belong to the tree is summarised when it passes (a few
 * numbers per page), and the tree is walked from the meta page at the end. Pages that turn out to be free
 * cost a summary each and are ignored. Memory grows with the number of pages (tens of bytes each), not
 * with their content, except for one multi-page value at a time.
 *
 * `finish()` returns null rather than a guess when the stream does not hold a tree it can walk.
 */
export class StreamingStatus {
  private pageSize = 0;
  private carry: Buffer = Buffer.alloc(0);
  private nextPage = 0;
  private readonly metas: Meta[] = [];
  private readonly pages = new PageSummaries();
  /** Candidate pages spanning several pages that started in an earlier chunk, filled as pages pass. */
  private pending: { id: number; image: Buffer; filled: number }[] = [];
  private failed = false;

  /** Feeds the next bytes of the snapshot (the trailer may come along; it is not a page and is ignored). */
  update(chunk: Buffer): void {
    if (this.failed) return;
    let data = chunk;
    let off = 0;
    if (this.carry.length > 0) {
      if (this.pageSize > 0 && this.carry.length + chunk.length >= this.pageSize) {
        // Only the page that straddles the two chunks is joined; the rest is read in place (joining every
        // chunk to the carry copied the whole snapshot once more, a fifth of save's CPU).
        const need = this.pageSize - this.carry.length;
        this.page(Buffer.concat([this.carry, chunk.subarray(0, need)]));
        off = need;
      } else {
        data = Buffer.concat([this.carry, chunk]);
      }
    }
    if (this.pageSize === 0) {
      if (data.length < PAGE_HEADER_SIZE + 64) {
        this.carry = Buffer.from(data);
        return;
      }
      const meta = readMeta(data, 0, 0);
      if (meta.problem !== null || meta.pageSize < 512 || meta.pageSize > 1 << 20) {
        this.failed = true;
        return;
      }
      this.pageSize = meta.pageSize;
    }
    const size = this.pageSize;
    while (data.length - off >= size) {
      this.page(data.subarray(off, off + size), data.subarray(off));
      off += size;
    }
    this.carry = off < data.length ? Buffer.from(data.subarray(off)) : Buffer.alloc(0);
  }

  /**
   * One page of the stream; `following` is this page and what follows it in the same chunk, so a page that
   * overflows into the next ones is summarised in place when the chunk holds all of it (no copy). Only a
   * run cut by a chunk boundary is assembled, once, into a buffer of its final size.
   */
  private page(bytes: Buffer, following: Buffer = bytes): void {
    const id = this.nextPage++;
    if (this.pending.length > 0) {
      for (const p of this.pending) {
        bytes.copy(p.image, p.filled);
        p.filled += bytes.length;
      }
      const done = this.pending.filter((p) => p.filled === p.image.length);
      if (done.length > 0) {
        this.pending = this.pending.filter((p) => p.filled < p.image.length);
        for (const p of done) this.summarize(p.id, p.image);
      }
    }
    if (id < 2) {
      const meta = readMeta(bytes, id, 0);
      this.metas.push(meta);
      if (meta.problem === null) this.pages.reserve(meta.pgid);
      return;
    }
    const header = readPageHeader(bytes, 0);
    if (header.id !== id || (header.flags !== LEAF_PAGE && header.flags !== BRANCH_PAGE)) return;
    if (header.overflow === 0) {
      this.summarize(id, bytes);
      return;
    }
    const runBytes = (header.overflow + 1) * this.pageSize;
    if (runBytes > MAX_OVERFLOW_BYTES) return;
    if (following.length >= runBytes) {
      this.summarize(id, following.subarray(0, runBytes));
      return;
    }
    // Later pages are still fed to page() one by one: a stale overflow run may contain live pages.
    const image = Buffer.allocUnsafe(runBytes);
    bytes.copy(image, 0);
    this.pending.push({ id, image, filled: bytes.length });
  }

  private summarize(id: number, bytes: Buffer): void {
    try {
      const header = readPageHeader(bytes, 0);
      if (header.flags === BRANCH_PAGE) this.pages.setBranch(id, summarizeBranch(bytes, header.count));
      else this.pages.setLeaf(id, summarizeLeaf(bytes));
    } catch {
      // Garbage in a free page: it is simply not a candidate. A live page that fails shows as missing later.
    }
  }

  /** The status, or null when the stream did not contain a complete, walkable database. */
  finish(): SnapshotStatus | null {
    if (this.failed || this.metas.length < 2) return null;
    let meta: Meta;
    try {
      meta = chooseMeta([this.metas[0]!, this.metas[1]!]);
    } catch {
      return null;
    }
    const pages = this.pages;
    const visited = new Uint8Array(meta.pgid);
    // The leaf pages under `root` in key order, or null when a page of the tree did not stream by.
    const leaves = (root: number): number[] | null => {
      const out: number[] = [];
      const walk = (pgid: number): boolean => {
        if (pgid >= meta.pgid || visited[pgid]) return false;
        visited[pgid] = 1;
        const kind = pages.kind(pgid);
        if (kind === LEAF) {
          out.push(pgid);
          return true;
        }
        return kind === BRANCH && pages.children(pgid).every(walk);
      };
      return walk(root) ? out : null;
    };
    const rootLeaves = leaves(meta.root);
    if (!rootLeaves) return null;
    let hash = 0;
    let totalKey = 0;
    let revision = 0;
    for (const bucket of rootLeaves.flatMap((id) => pages.buckets(id))) {
      hash = crc32cUpdate(hash, bucket.name);
      const isKey = bucket.name.toString("latin1") === "key";
      const add = (crc: number, length: number, count: number, lastRevision: number | null) => {
        hash = crc32cCombine(hash, crc, length);
        totalKey += count;
        if (isKey && count > 0 && lastRevision !== null) revision = lastRevision;
      };
      if (bucket.inline) {
        const leaf = bucket.inline;
        add(leaf.crc, leaf.length, leaf.count, leaf.lastRevision);
        continue;
      }
      const ids = leaves(bucket.root);
      if (!ids) return null;
      for (const id of ids) add(pages.crc[id]!, pages.length[id]!, pages.count[id]!, pages.lastRevision(id));
    }
    return { hash, revision, totalKey, totalSize: meta.pgid * this.pageSize };
  }
}

const NONE = 0;
const LEAF = 1;
const BRANCH = 2;
/** Above this many pages (128 GiB of 4 KiB pages) a meta page's high-water mark is not trusted for sizing. */
const MAX_RESERVE = 1 << 25;

/**
 * The per-page summaries in typed arrays indexed by page id: 19 bytes a page (9.3 MiB for the 2 GB bench
 * database's 511,594 pages; 25 until the count and length arrays were narrowed) where an object per page cost ~130 (save's peak RSS grew 23-29% from 200 MB to 1 GB). A page's
 * entry count is bbolt's 16-bit one, and the bytes it hashes fit 32 bits (a run is at most MAX_OVERFLOW_BYTES).
 * Branch children and the root's bucket lists, rare by comparison, stay in maps.
 */
class PageSummaries {
  kinds = new Uint8Array(0);
  crc = new Uint32Array(0);
  count = new Uint16Array(0);
  length = new Uint32Array(0);
  /** NaN where the page's last key is not a revision. */
  revision = new Float64Array(0);
  private readonly branches = new Map<number, number[]>();
  private readonly bucketLists = new Map<number, LeafSummary["buckets"]>();

  /** Makes room for pages below `pages` at once (the meta page's high-water mark), instead of by doubling. */
  reserve(pages: number): void {
    if (pages > this.kinds.length && pages <= MAX_RESERVE) this.grow(pages);
  }

  kind(id: number): number {
    return id < this.kinds.length ? this.kinds[id]! : NONE;
  }

  children(id: number): number[] {
    return this.branches.get(id) ?? [];
  }

  buckets(id: number): LeafSummary["buckets"] {
    return this.bucketLists.get(id) ?? [];
  }

  lastRevision(id: number): number | null {
    const r = this.revision[id]!;
    return Number.isNaN(r) ? null : r;
  }

  setBranch(id: number, children: number[]): void {
    this.ensure(id);
    this.kinds[id] = BRANCH;
    this.branches.set(id, children);
  }

  setLeaf(id: number, summary: LeafSummary): void {
    this.ensure(id);
    this.kinds[id] = LEAF;
    this.crc[id] = summary.crc;
    this.count[id] = summary.count;
    this.length[id] = summary.length;
    this.revision[id] = summary.lastRevision ?? Number.NaN;
    if (summary.buckets.length > 0) this.bucketLists.set(id, summary.buckets);
  }

  private ensure(id: number): void {
    if (id >= this.kinds.length) this.grow(Math.max(id + 1, this.kinds.length * 2, 1024));
  }

  private grow(size: number): void {
    const kinds = new Uint8Array(size);
    kinds.set(this.kinds);
    const crc = new Uint32Array(size);
    crc.set(this.crc);
    const count = new Uint16Array(size);
    count.set(this.count);
    const length = new Uint32Array(size);
    length.set(this.length);
    const revision = new Float64Array(size);
    revision.set(this.revision);
    this.kinds = kinds;
    this.crc = crc;
    this.count = count;
    this.length = length;
    this.revision = revision;
  }
}

/** The child page ids of a branch page, in key order. */
function summarizeBranch(bytes: Buffer, count: number): number[] {
  const children: number[] = [];
  for (let i = 0; i < count; i++) {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (e + ELEMENT_SIZE > bytes.length) throw new Error("branch element out of page");
    children.push(readU64(bytes, e + 8));
  }
  return children;
}

/** Summarises a leaf page image (a page, or an inline bucket's page inside a value). */
function summarizeLeaf(bytes: Buffer): LeafSummary {
  const count = readPageHeader(bytes, 0).count;
  let crc = 0;
  let length = 0;
  let lastRevision: number | null = null;
  const buckets: LeafSummary["buckets"] = [];
  // The bytes [runStart, runEnd) are still to be hashed.
  let runStart = 0;
  let runEnd = 0;
  for (let i = 0; i < count; i++) {
    const e = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    if (e + ELEMENT_SIZE > bytes.length) throw new Error("leaf element out of page");
    const flags = readU32(bytes, e);
    const k = e + readU32(bytes, e + 4);
    const ksize = readU32(bytes, e + 8);
    const vsize = readU32(bytes, e + 12);
    const v = k + ksize;
    if (v + vsize > bytes.length) throw new Error("leaf value out of page");
    // bbolt writes each key and its value right after the previous value, so the bytes to hash are mostly
    // one run per page: hashed in one call (the SIMD loop needs long ranges), not two per entry.
    if (k !== runEnd) {
      if (runEnd > runStart) crc = crc32cUpdate(crc, bytes, runStart, runEnd);
      runStart = k;
    }
    runEnd = v;
    length += ksize;
    if (flags & BUCKET_LEAF_FLAG) {
      // etcd's status hashes a nested bucket's name only; its value is the bucket header (+ inline page).
      const root = readU64(bytes, v);
      const inline = root === 0 ? summarizeLeaf(bytes.subarray(v + BUCKET_HEADER_SIZE, v + vsize)) : null;
      buckets.push({ name: Buffer.from(bytes.subarray(k, v)), root, inline });
    } else {
      runEnd = v + vsize;
      length += vsize;
    }
    lastRevision =
      ksize === 17 || ksize === 18 ? bytes.readUInt32BE(k) * 2 ** 32 + bytes.readUInt32BE(k + 4) : null;
  }
  if (runEnd > runStart) crc = crc32cUpdate(crc, bytes, runStart, runEnd);
  return { crc, length, count, lastRevision, buckets };
}
