import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/** Passes bytes through while computing their sha256 and count; `hex` is set once the stream has ended. */
export class DigestStage extends Transform {
  bytes = 0;
  hex: string | undefined;
  private readonly hash: Hash = createHash("sha256");

  constructor() {
    super({ highWaterMark: 1 << 16 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.hex = this.hash.digest("hex");
    callback();
  }
}
