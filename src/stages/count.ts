import { Transform, type TransformCallback } from "node:stream";

/** Counts the bytes that pass; `bytes` is read by the manifest and by progress reporting. */
export class ByteCounter extends Transform {
  bytes = 0;
  private readonly onBytes: ((total: number) => void) | undefined;

  constructor(onBytes?: (total: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}
