import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { COALESCE_BYTES } from "./coalesce.ts";

/** Length of the sha256 etcd appends to a snapshot. */
export const TRAILER_LENGTH = 32;

/** What the trailer check learned once the stream has ended. */
export interface TrailerResult {
  /** Bytes of the bbolt database, without the trailer. */
  dbSize: number;
  /** sha256 of the whole snapshot as stored and restored (database and trailer), hex. */
  sha256: string;
  /**
   * False only with `allowMissing`, for a snapshot that is the database alone (a copy of a data dir's
   * member/snap/db): nothing was there to check, and `dbSize` is the whole file.
   */
  hasTrailer: boolean;
}

/**
 * Checks etcd's snapshot trailer on the fly: the last 32 bytes must equal the sha256 of everything before
 * them. Bytes pass through unchanged (trailer included) as they arrive, except the last 32 which are held
 * back until the end of the input and released only when they match; on a mismatch the stream fails, so a
 * store consuming it never completes the object.
 */
export class TrailerCheck extends Transform {
  // One pass over the bytes: the whole file's hash is the database's hash continued with the trailer
  // (a copy of the hash state taken at the end), not a second hash over the same bytes.
  private readonly dbHash: Hash = createHash("sha256");
  private tail: Buffer = Buffer.alloc(0);
  private dbBytes = 0;
  private readonly expectSha256: string | undefined;
  private readonly allowMissing: boolean;
  result: TrailerResult | undefined;

  /**
   * `expectSha256`: the sha256 a manifest recorded for the whole file; a different one fails the stream.
   * `allowMissing`: a snapshot whose last 32 bytes are not its trailer passes as the database alone when its
   * size is a whole number of 512-byte pages (as `verify` judges it); the held bytes then go on as content.
   */
  constructor(options: { expectSha256?: string; allowMissing?: boolean } = {}) {
    super({ highWaterMark: COALESCE_BYTES });
    this.expectSha256 = options.expectSha256;
    this.allowMissing = options.allowMissing ?? false;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    // Keep the newest 32 bytes back; everything older is database content and can go on.
    if (chunk.length >= TRAILER_LENGTH) {
      // The held bytes go out as they are and the chunk as a view: joining them copied every chunk.
      const cut = chunk.length - TRAILER_LENGTH;
      if (this.tail.length > 0) this.passOn(this.tail);
      if (cut > 0) this.passOn(chunk.subarray(0, cut));
      this.tail = Buffer.from(chunk.subarray(cut));
      callback();
      return;
    }
    const joined = this.tail.length > 0 ? Buffer.concat([this.tail, chunk]) : chunk;
    if (joined.length <= TRAILER_LENGTH) {
      this.tail = Buffer.from(joined);
      callback();
      return;
    }
    const cut = joined.length - TRAILER_LENGTH;
    const out = joined.subarray(0, cut);
    this.tail = Buffer.from(joined.subarray(cut));
    this.dbHash.update(out);
    this.dbBytes += out.length;
    callback(null, out);
  }

  private passOn(out: Buffer): void {
    this.dbHash.update(out);
    this.dbBytes += out.length;
    this.push(out);
  }

  override _flush(callback: TransformCallback): void {
    if (this.tail.length < TRAILER_LENGTH) {
      callback(
        new Error(
          `snapshot is too short to hold a sha256 trailer (${this.dbBytes + this.tail.length} bytes)`,
        ),
      );
      return;
    }
    const fileHash = this.dbHash.copy();
    const expected = this.dbHash.digest();
    const size = this.dbBytes + this.tail.length;
    const hasTrailer = expected.equals(this.tail);
    // Without a trailer, the last 32 bytes are the database's own: allowed only when asked, and only for a
    // whole number of pages, as a database copied out of a data dir is.
    if (!hasTrailer && !(this.allowMissing && size % 512 === 0)) {
      callback(
        new Error(
          "snapshot sha256 trailer does not match its content: the snapshot is corrupted or was cut short",
        ),
      );
      return;
    }
    const sha256 = fileHash.update(this.tail).digest("hex");
    if (this.expectSha256 && sha256 !== this.expectSha256) {
      callback(
        new Error(
          `snapshot sha256 ${sha256.slice(0, 12)}… differs from the manifest's ${this.expectSha256.slice(0, 12)}…`,
        ),
      );
      return;
    }
    this.result = { dbSize: hasTrailer ? this.dbBytes : size, sha256, hasTrailer };
    callback(null, this.tail);
  }
}
