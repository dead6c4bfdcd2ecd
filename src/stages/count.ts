import { Transform, type TransformCallback } from "node:stream";
import { COALESCE_BYTES } from "./coalesce.ts";

/** Counts the bytes that pass; `bytes` is read by the manifest and by progress reporting. */
export class ByteCounter extends Transform {
  bytes = 0;
  private readonly onBytes: ((total: number) => void) | undefined;

  constructor(onBytes?: (total: number) => void) {
    super({ highWaterMark: COALESCE_BYTES });
    this.onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}
