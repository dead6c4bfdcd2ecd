import { readFile } from "node:fs/promises";
import { chooseMeta, type Meta, readMetas } from "./bbolt-meta.ts";
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
} from "./bbolt-page.ts";

/** A bucket: its B+tree root page, or an inline page stored inside its parent's leaf value. */
export interface Bucket {
  name: Buffer;
  /** Root page id; 0 for an inline bucket. */
  root: number;
  sequence: bigint;
  /** Byte offset of the inline page in the database buffer, or -1 when the bucket has its own pages. */
  inlineOffset: number;
  /** End of the inline page (the end of the parent's value). */
  inlineEnd: number;
}

/** One key/value as byte ranges of the database buffer, so that walking a bucket allocates nothing. */
export type EntryVisitor = (
  buf: Buffer,
  keyOff: number,
  keyLen: number,
  valueOff: number,
  valueLen: number,
  flags: number,
) => void;

/** A key/value of a bucket. `key` and `value` are views into the database buffer. */
export interface Entry {
  key: Buffer;
  value: Buffer;
  /** True when the value is a nested bucket header. */
  isBucket: boolean;
}

/** Deeper than any real tree (bbolt fills pages to half at least): deeper means a cycle. */
const MAX_DEPTH = 64;

/**
 * A read-only bbolt database held in one Buffer (a whole file, optionally followed by etcd's sha256 trailer).
 * Reading never writes and never copies: keys and values handed out are views into the buffer.
 */
export class BoltDb {
  readonly buf: Buffer;
  readonly meta: Meta;
  readonly metas: [Meta, Meta];
  readonly pageSize: number;

  /** Reads the meta pages. Throws when neither meta page is valid or the file is shorter than its high-water mark. */
  constructor(buf: Buffer) {
    this.buf = buf;
    this.metas = readMetas(buf);
    this.meta = chooseMeta(this.metas);
    this.pageSize = this.meta.pageSize;
    if (this.meta.pgid * this.pageSize > buf.length) {
      throw new Error(
        `database truncated: high-water page ${this.meta.pgid} needs ${this.meta.pgid * this.pageSize} bytes, file has ${buf.length}`,
      );
    }
  }

  /** Reads a database file whole. */
  static async open(path: string): Promise<BoltDb> {
    return new BoltDb(await readFile(path));
  }

  /** tx.Size() in bbolt: the high-water mark times the page size, what etcd reports as the database size. */
  get size(): number {
    return this.meta.pgid * this.pageSize;
  }

  /** The root bucket, whose entries are the top-level buckets. */
  get rootBucket(): Bucket {
    return {
      name: Buffer.alloc(0),
      root: this.meta.root,
      sequence: this.meta.sequence,
      inlineOffset: -1,
      inlineEnd: -1,
    };
  }

  /** Byte offset of page `id`, checked against the high-water mark and the buffer. */
  pageOffset(id: number): number {
    if (id >= this.meta.pgid) throw new Error(`page ${id} beyond high-water mark ${this.meta.pgid}`);
    return id * this.pageSize;
  }

  /** The top-level buckets in key order. */
  buckets(): Bucket[] {
    const out: Bucket[] = [];
    this.walk(this.rootBucket, (buf, ko, kl, vo, vl, flags) => {
      if (flags & BUCKET_LEAF_FLAG) out.push(this.bucketAt(buf.subarray(ko, ko + kl), vo, vl));
    });
    return out;
  }

  /** The top-level bucket `name`, or null when there is none. */
  bucket(name: string): Bucket | null {
    return this.buckets().find((b) => b.name.toString("latin1") === name) ?? null;
  }

  /** The nested bucket whose header is the value at `[valueOff, valueOff + valueLen)`. */
  bucketAt(name: Buffer, valueOff: number, valueLen: number): Bucket {
    if (valueLen < BUCKET_HEADER_SIZE)
      throw new Error(`bucket ${JSON.stringify(name.toString("latin1"))}: header truncated`);
    const root = readU64(this.buf, valueOff);
    const sequence = this.buf.readBigUInt64LE(valueOff + 8);
    const inline = root === 0;
    return {
      name,
      root,
      sequence,
      inlineOffset: inline ? valueOff + BUCKET_HEADER_SIZE : -1,
      inlineEnd: inline ? valueOff + valueLen : -1,
    };
  }

  /** Calls `visit` for each entry of `bucket` in key order. Throws on a page that cannot be read. */
  walk(bucket: Bucket, visit: EntryVisitor): void {
    if (bucket.inlineOffset >= 0) this.walkPage(bucket.inlineOffset, bucket.inlineEnd, -1, visit, 0);
    else this.walkPage(this.pageOffset(bucket.root), 0, bucket.root, visit, 0);
  }

  /** The entries of `bucket` in key order, as views into the buffer. */
  *entries(bucket: Bucket): Generator<Entry> {
    const out: Entry[] = [];
    this.walk(bucket, (buf, ko, kl, vo, vl, flags) => {
      out.push({
        key: buf.subarray(ko, ko + kl),
        value: buf.subarray(vo, vo + vl),
        isBucket: (flags & BUCKET_LEAF_FLAG) !== 0,
      });
    });
    yield* out;
  }

  /** `inlineEnd` bounds an inline page (id -1); pages of the file are bounded by their overflow count. */
  private walkPage(off: number, inlineEnd: number, id: number, visit: EntryVisitor, depth: number): void {
    const buf = this.buf;
    if (depth > MAX_DEPTH) throw new Error(`page ${id}: tree deeper than ${MAX_DEPTH} levels (cycle)`);
    if (off + PAGE_HEADER_SIZE > buf.length) throw new Error(`page ${id}: beyond end of file`);
    const flags = readU16(buf, off + 8);
    const count = readU16(buf, off + 10);
    const end = id < 0 ? inlineEnd : off + (readU32(buf, off + 12) + 1) * this.pageSize;
    if (end > buf.length) throw new Error(`page ${id}: overflow beyond end of file`);
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
    } else if (flags === BRANCH_PAGE) {
      for (let i = 0, e = off + PAGE_HEADER_SIZE; i < count; i++, e += ELEMENT_SIZE) {
        const child = readU64(buf, e + 8);
        this.walkPage(this.pageOffset(child), 0, child, visit, depth + 1);
      }
    } else {
      throw new Error(`page ${id}: expected branch or leaf, found ${pageTypeName(flags)}`);
    }
  }
}
