import { Transform, type TransformCallback } from "node:stream";

/** What zstd and the hashes work best on; sources deliver much smaller pieces (etcd: 32 KiB messages). */
export const COALESCE_BYTES = 1 << 20;

/**
 * Joins small chunks into pieces of at least `size` bytes. Every later stage then pays its per-call cost
 * (a zstd round trip to the thread pool, a hash update, a write) once per MiB instead of once per message;
 * measured on a 216 MB snapshot, zstd alone went from 2.3 s to 1.6 s. Holds at most `size` bytes.
 */
export class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private held = 0;
  private readonly size: number;

  constructor(size = COALESCE_BYTES) {
    super({ highWaterMark: size });
    this.size = size;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.held === 0 && chunk.length >= this.size) {
      callback(null, chunk);
      return;
    }
    this.parts.push(chunk);
    this.held += chunk.length;
    if (this.held < this.size) {
      callback();
      return;
    }
    const out = Buffer.concat(this.parts, this.held);
    this.parts = [];
    this.held = 0;
    callback(null, out);
  }

  override _flush(callback: TransformCallback): void {
    if (this.held > 0) this.push(Buffer.concat(this.parts, this.held));
    this.parts = [];
    callback();
  }
}
