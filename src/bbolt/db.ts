import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { chooseMeta, type Meta, readMetas } from "./meta.ts";
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  ELEMENT_SIZE,
  LEAF_PAGE,
  PAGE_HEADER_SIZE,
  pageTypeName,
  readU16,
  readU32,
  readU64,
} from "./page.ts";
import { FileSource } from "./page-source.ts";

/** A bucket: its B+tree root page, or an inline page stored inside its parent's leaf value. */
export interface Bucket {
  name: Buffer;
  /** Root page id; 0 for an inline bucket. */
  root: number;
  sequence: bigint;
  /** The inline page (a view, or a copy when the database is read from a file descriptor); null otherwise. */
  inline: Buffer | null;
}

/**
 * One key/value as byte ranges of `buf`, so that walking a bucket allocates nothing. The ranges are valid
 * only until the visitor returns, whatever the database is read from: with one read page by page
 * (openFile), `buf` is a window or scratch buffer that the next page read overwrites. A visitor that keeps
 * a key or value copies it (ownership rule of this reader; see the class comment).
 */
export type EntryVisitor = (
  buf: Buffer,
  keyOff: number,
  keyLen: number,
  valueOff: number,
  valueLen: number,
  flags: number,
) => void;

/** A key/value of a bucket. */
export interface Entry {
  key: Buffer;
  value: Buffer;
  /** True when the value is a nested bucket header. */
  isBucket: boolean;
}

/** Deeper than any real tree (bbolt fills pages to half at least): deeper means a cycle. */
const MAX_DEPTH = 64;

/** Meta pages are within the first two pages, and pages are at most 64 KiB. */
const META_PROBE = 2 * 65536 + 128;

/**
 * A read-only bbolt database (a whole file, optionally followed by etcd's sha256 trailer), held in one
 * Buffer (`new BoltDb(buf)`, `open`) or read page by page from a file descriptor (`openFile`, for a single
 * pass in little memory). Reading never writes.
 *
 * Buffer ownership: every Buffer this class hands to a visitor is a view that is valid until the visitor
 * returns and no longer: the same code must be right for both kinds of source, and only the page-by-page one
 * reuses its buffers. So anything kept past a visitor call (keys and values for get, diff, inspect) is copied
 * by its keeper, and a visitor may not start another walk of the same database (the pages of the outer walk
 * would be overwritten): `walk` throws if it does. Bucket names and inline bucket pages returned by
 * `buckets`/`bucket` are the caller's to keep. Every page is visited at most once per walk, so a corrupt file
 * whose pages point at each other fails instead of looping.
 */
export class BoltDb {
  /** The whole database, or an empty buffer when it is read page by page. */
  readonly buf: Buffer;
  readonly meta: Meta;
  readonly metas: [Meta, Meta];
  readonly pageSize: number;
  private readonly fd: number;
  private readonly scratch: Buffer[] = [];
  /** The walk in progress's end-of-leaf callback. */
  private leafDone: (() => void) | null = null;
  /** Pages visited by the walk in progress (one flag per page id); null when no walk runs. */
  private visited: Uint8Array | null = null;
  /** The file's pages through a small window cache, when read page by page. */
  private readonly source: FileSource | null;

  /**
   * Reads the meta pages of a database held in `buf` (or of the file `fd` when given, `buf` then holding its
   * first pages). Throws when neither meta page is valid or the file is shorter than its high-water mark.
   */
  constructor(buf: Buffer, fd = -1, fileSize = buf.length) {
    this.fd = fd;
    this.buf = fd >= 0 ? Buffer.alloc(0) : buf;
    this.source = fd >= 0 ? new FileSource(fd) : null;
    this.metas = readMetas(buf);
    this.meta = chooseMeta(this.metas);
    this.pageSize = this.meta.pageSize;
    if (this.meta.pgid * this.pageSize > fileSize) {
      throw new Error(
        `database truncated: high-water page ${this.meta.pgid} needs ${this.meta.pgid * this.pageSize} bytes, file has ${fileSize}`,
      );
    }
  }

  /** Reads a database file whole. */
  static async open(path: string): Promise<BoltDb> {
    return new BoltDb(await readFile(path));
  }

  /**
   * Opens a database file to be read page by page: memory stays a few pages whatever the file size, and
   * entry views are valid only during a visitor callback. Call `close` when done.
   */
  static openFile(path: string): BoltDb {
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      const head = Buffer.alloc(Math.min(size, META_PROBE));
      readSync(fd, head, 0, head.length, 0);
      return new BoltDb(head, fd, size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Closes the file of a database opened with openFile; a no-op otherwise. */
  close(): void {
    this.source?.close();
    if (this.fd >= 0) closeSync(this.fd);
  }

  /** tx.Size() in bbolt: the high-water mark times the page size, what etcd reports as the database size. */
  get size(): number {
    return this.meta.pgid * this.pageSize;
  }

  /** The root bucket, whose entries are the top-level buckets. */
  get rootBucket(): Bucket {
    return { name: Buffer.alloc(0), root: this.meta.root, sequence: this.meta.sequence, inline: null };
  }

  /** The top-level buckets in key order. */
  buckets(): Bucket[] {
    const out: Bucket[] = [];
    this.walk(this.rootBucket, (buf, ko, kl, vo, vl, flags) => {
      if (flags & BUCKET_LEAF_FLAG)
        out.push(this.bucketAt(Buffer.from(buf.subarray(ko, ko + kl)), buf, vo, vl));
    });
    return out;
  }

  /** The top-level bucket `name`, or null when there is none. */
  bucket(name: string): Bucket | null {
    return this.buckets().find((b) => b.name.toString("latin1") === name) ?? null;
  }

  /** The nested bucket whose header is the value `buf[valueOff, valueOff + valueLen)`. */
  bucketAt(name: Buffer, buf: Buffer, valueOff: number, valueLen: number): Bucket {
    if (valueLen < BUCKET_HEADER_SIZE)
      throw new Error(`bucket ${JSON.stringify(name.toString("latin1"))}: header truncated`);
    const root = readU64(buf, valueOff);
    const sequence = buf.readBigUInt64LE(valueOff + 8);
    let inline: Buffer | null = null;
    if (root === 0) {
      inline = buf.subarray(valueOff + BUCKET_HEADER_SIZE, valueOff + valueLen);
      if (this.fd >= 0) inline = Buffer.from(inline);
    }
    return { name, root, sequence, inline };
  }

  /**
   * Calls `visit` for each entry of `bucket` in key order. Throws on a page that cannot be read.
   *
   * `leafDone`, when given, is called after the last entry of each leaf page: the `buf` of that page's entries
   * stays valid until it returns, so a visitor may defer work on the page's ranges until then (status hashes
   * each page's run of keys and values in one call).
   */
  walk(bucket: Bucket, visit: EntryVisitor, leafDone?: () => void): void {
    if (this.visited) throw new Error("a walk of this database was started inside another walk");
    this.visited = new Uint8Array(this.meta.pgid);
    this.leafDone = leafDone ?? null;
    try {
      if (bucket.inline) this.walkPage(bucket.inline, 0, bucket.inline.length, -1, visit, 0);
      else this.walkId(bucket.root, visit, 0);
    } finally {
      this.visited = null;
      this.leafDone = null;
    }
  }

  /** The entries of `bucket` in key order (copies when the database is read page by page). */
  entries(bucket: Bucket): Entry[] {
    const out: Entry[] = [];
    const copy = this.fd >= 0;
    this.walk(bucket, (buf, ko, kl, vo, vl, flags) => {
      const key = buf.subarray(ko, ko + kl);
      const value = buf.subarray(vo, vo + vl);
      out.push({
        key: copy ? Buffer.from(key) : key,
        value: copy ? Buffer.from(value) : value,
        isBucket: (flags & BUCKET_LEAF_FLAG) !== 0,
      });
    });
    return out;
  }

  private walkId(id: number, visit: EntryVisitor, depth: number): void {
    if (depth > MAX_DEPTH) throw new Error(`page ${id}: tree deeper than ${MAX_DEPTH} levels (cycle)`);
    if (id >= this.meta.pgid) throw new Error(`page ${id} beyond high-water mark ${this.meta.pgid}`);
    if (id < 2) throw new Error(`page ${id} is a meta page, not part of a tree`);
    const visited = this.visited!;
    if (visited[id]) throw new Error(`page ${id} is reached twice in one tree (cycle or shared page)`);
    visited[id] = 1;
    if (this.fd < 0) {
      const off = id * this.pageSize;
      const end = off + (readU32(this.buf, off + 12) + 1) * this.pageSize;
      if (end > this.buf.length) throw new Error(`page ${id}: overflow beyond end of file`);
      this.walkPage(this.buf, off, end, id, visit, depth);
      return;
    }
    const pos = id * this.pageSize;
    let page = this.windowed(pos, this.pageSize, id);
    const size = (readU32(page, 12) + 1) * this.pageSize;
    if (pos + size > this.meta.pgid * this.pageSize)
      throw new Error(`page ${id}: overflow beyond high-water mark`);
    if (size > this.pageSize) page = this.windowed(pos, size, id);
    if (readU16(page, 8) === BRANCH_PAGE) {
      // Children move the window: a branch page is kept in its level's own scratch buffer meanwhile.
      let keep = this.scratch[depth];
      if (!keep || keep.length < size) {
        keep = Buffer.allocUnsafeSlow(size);
        this.scratch[depth] = keep;
      }
      page.copy(keep, 0, 0, size);
      page = keep;
    }
    this.walkPage(page, 0, size, id, visit, depth);
  }

  /**
   * `length` bytes at `pos` as a view of the window cache: pages of one tree mostly lie in clusters, so one
   * read serves many of them. The view is valid until the next call.
   */
  private windowed(pos: number, length: number, id: number): Buffer {
    try {
      return this.source!.view(pos, length);
    } catch {
      throw new Error(`page ${id}: beyond end of file`);
    }
  }

  /** Walks the page at `buf[off, end)`; `id` is -1 for an inline page. */
  private walkPage(
    buf: Buffer,
    off: number,
    end: number,
    id: number,
    visit: EntryVisitor,
    depth: number,
  ): void {
    if (off + PAGE_HEADER_SIZE > end) throw new Error(`page ${id}: truncated`);
    const flags = readU16(buf, off + 8);
    const count = readU16(buf, off + 10);
    if (off + PAGE_HEADER_SIZE + count * ELEMENT_SIZE > end)
      throw new Error(`page ${id}: ${count} elements do not fit`);
    if (flags === LEAF_PAGE) {
      for (let i = 0, e = off + PAGE_HEADER_SIZE; i < count; i++, e += ELEMENT_SIZE) {
        const ko = e + readU32(buf, e + 4);
        const kl = readU32(buf, e + 8);
        const vl = readU32(buf, e + 12);
        if (ko + kl + vl > end) throw new Error(`page ${id}: element ${i} beyond page end`);
        visit(buf, ko, kl, ko + kl, vl, readU32(buf, e));
      }
      this.leafDone?.();
    } else if (flags === BRANCH_PAGE) {
      // Children are read into the next level's scratch page, so this page's element list stays intact.
      for (let i = 0, e = off + PAGE_HEADER_SIZE; i < count; i++, e += ELEMENT_SIZE)
        this.walkId(readU64(buf, e + 8), visit, depth + 1);
    } else {
      throw new Error(`page ${id}: expected branch or leaf, found ${pageTypeName(flags)}`);
    }
  }
}
