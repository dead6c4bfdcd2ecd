import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32cMemory } from "../mvcc/crc32c.ts";

/*
 * Buffer ownership: `bytes` returns a buffer the caller owns (for a file, a fresh copy). `view` returns a
 * view that is valid only until the next call on the same source: a FileSource reuses its window buffers
 * (least recently used out after WINDOW_SLOTS windows) and one scratch buffer for spans that cross a window
 * boundary. Nothing may keep a view across calls; readers built on this state it again (bbolt-db.ts).
 * The windows and the scratch buffer are one block of memory owned by the FileSource for its whole life,
 * allocated where CRC-32C hashes in place (crc32cMemory): status hashes every key and value it reads, and
 * this spares a copy of each into the WebAssembly module.
 */

/**
 * Bytes of a database, in memory or in a file read on demand. Callers check bounds against `size` first;
 * reading past the end throws.
 */
export interface ByteSource {
  readonly size: number;
  /** `length` bytes at `pos`, as a buffer the caller may keep (a view of the whole buffer, or a copy). */
  bytes(pos: number, length: number): Buffer;
  /** `length` bytes at `pos` as a view valid only until the next call on this source (no copy when it can). */
  view(pos: number, length: number): Buffer;
  close(): void;
}

/** A database held whole in memory: every read is a view, nothing is copied. */
export class BufferSource implements ByteSource {
  readonly size: number;
  private readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.size = buf.length;
  }

  bytes(pos: number, length: number): Buffer {
    if (pos + length > this.buf.length)
      throw new Error(`read of ${length} bytes at ${pos} beyond end of file`);
    return this.buf.subarray(pos, pos + length);
  }

  view(pos: number, length: number): Buffer {
    return this.bytes(pos, length);
  }

  close(): void {}
}

/** Size of one cached window of a file: big enough to amortise a read, small enough to waste little. */
const WINDOW_SIZE = 1 << 16;
/** Windows kept: pages of one tree lie in clusters, so recent windows serve most reads (4 MiB). */
const WINDOW_SLOTS = 64;
/** Spans up to this size that cross windows are assembled from them; longer ones are read directly. */
const SCRATCH_BYTES = (WINDOW_SLOTS / 2) * WINDOW_SIZE;

/**
 * A database file read on demand through a small cache of aligned windows (least recently used out):
 * memory stays about `WINDOW_SIZE × WINDOW_SLOTS` whatever the file size. A status walk of the 200 MB
 * benchmark snapshots reads 1.20 (Kubernetes-shaped) and 1.01 (large values) times the file; with 16
 * windows of 256 KiB, the same memory, it read 1.39 and 1.05 times, and 13 times with one read-ahead window.
 * (The Kubernetes-shaped walk alternates between leaf pages at the end of the file and large values spread
 * over the rest; smaller windows waste less of each read there.)
 */
export class FileSource implements ByteSource {
  readonly size: number;
  private readonly fd: number;
  private readonly ownsFd: boolean;
  /** Window index -> its bytes; Map order is recency (oldest first). */
  private readonly windows = new Map<number, Buffer>();
  private readonly spare: Buffer[] = [];
  /** Windows handed out so far (slots of `memory`). */
  private slots = 0;
  /** WINDOW_SLOTS windows, then SCRATCH_BYTES of scratch; allocated on the first read. */
  private memory: Buffer | null = null;
  private scratch: Buffer = Buffer.alloc(0);
  /** The window used last, checked before the map: consecutive reads mostly fall in the same one. */
  private lastIndex = -1;
  private last: Buffer = Buffer.alloc(0);

  /** Opens `path`, or reads the already open `fd` (then `close` leaves it open). */
  constructor(pathOrFd: string | number) {
    this.ownsFd = typeof pathOrFd === "string";
    this.fd = typeof pathOrFd === "string" ? openSync(pathOrFd, "r") : pathOrFd;
    try {
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      if (this.ownsFd) closeSync(this.fd);
      throw err;
    }
  }

  bytes(pos: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.copyInto(out, pos, length);
    return out;
  }

  view(pos: number, length: number): Buffer {
    if (pos + length > this.size) throw new Error(`read of ${length} bytes at ${pos} beyond end of file`);
    if (length === 0) return Buffer.alloc(0);
    const w = Math.floor(pos / WINDOW_SIZE);
    const start = pos - w * WINDOW_SIZE;
    if (start + length <= WINDOW_SIZE) return this.window(w, pos).subarray(start, start + length);
    if (this.scratch.length < length) {
      const memory = this.allocated();
      this.scratch =
        length <= SCRATCH_BYTES
          ? memory.subarray(WINDOW_SLOTS * WINDOW_SIZE)
          : Buffer.allocUnsafeSlow(length);
    }
    this.copyInto(this.scratch, pos, length);
    return this.scratch.subarray(0, length);
  }

  close(): void {
    this.lastIndex = -1;
    this.last = Buffer.alloc(0);
    this.windows.clear();
    this.spare.length = 0;
    this.memory = null;
    this.scratch = Buffer.alloc(0);
    if (this.ownsFd) closeSync(this.fd);
  }

  private copyInto(out: Buffer, pos: number, length: number): void {
    if (pos + length > this.size) throw new Error(`read of ${length} bytes at ${pos} beyond end of file`);
    // A span bigger than the cache (a large overflow page) is read directly, not through the windows.
    if (length > (WINDOW_SLOTS / 2) * WINDOW_SIZE) {
      readFully(this.fd, out, 0, length, pos);
      return;
    }
    let done = 0;
    while (done < length) {
      const at = pos + done;
      const w = Math.floor(at / WINDOW_SIZE);
      const start = at - w * WINDOW_SIZE;
      const n = Math.min(length - done, WINDOW_SIZE - start);
      this.window(w, at).copy(out, done, start, start + n);
      done += n;
    }
  }

  /** Window `w` (which holds `pos`), read now unless cached. */
  private window(w: number, pos: number): Buffer {
    if (w === this.lastIndex) return this.last;
    const buf = this.lookup(w, pos);
    this.lastIndex = w;
    this.last = buf;
    return buf;
  }

  private lookup(w: number, pos: number): Buffer {
    const hit = this.windows.get(w);
    if (hit) {
      this.windows.delete(w);
      this.windows.set(w, hit);
      return hit;
    }
    if (this.windows.size >= WINDOW_SLOTS) {
      const [oldest, buf] = this.windows.entries().next().value as [number, Buffer];
      this.windows.delete(oldest);
      this.spare.push(buf);
    }
    const from = w * WINDOW_SIZE;
    const length = Math.min(WINDOW_SIZE, this.size - from);
    if (length <= 0) throw new Error(`read at ${pos} beyond end of file`);
    let buf = this.spare.pop();
    if (!buf) {
      // Every slot handed out is in `windows` or `spare`, so there are never more than WINDOW_SLOTS.
      const at = this.slots++ * WINDOW_SIZE;
      buf = this.allocated().subarray(at, at + WINDOW_SIZE);
    }
    try {
      readFully(this.fd, buf, 0, length, from);
    } catch (err) {
      this.spare.push(buf);
      throw err;
    }
    this.windows.set(w, buf);
    return buf;
  }

  /** The windows' and scratch's memory, allocated now if it is not yet. */
  private allocated(): Buffer {
    const bytes = WINDOW_SLOTS * WINDOW_SIZE + SCRATCH_BYTES;
    this.memory ??= crc32cMemory(bytes) ?? Buffer.allocUnsafeSlow(bytes);
    return this.memory;
  }
}

function readFully(fd: number, into: Buffer, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, into, offset + done, length - done, position + done);
    if (n <= 0) throw new Error(`read at ${position + done} beyond end of file`);
    done += n;
  }
}
