import { Transform, type TransformCallback } from "node:stream";
import type { SnapshotStatus } from "../mvcc/status.ts";
import { StreamingStatus } from "../mvcc/streaming-status.ts";
import { COALESCE_BYTES } from "./coalesce.ts";

/**
 * Passes the plain snapshot through unchanged while computing what `etcdutl snapshot status` would say of
 * it, so the manifest records etcd's revision, hash and key count without a second read.
 */
export class StatusTap extends Transform {
  private readonly status = new StreamingStatus();
  /** Set once the stream has ended; null when the snapshot's tree could not be walked. */
  result: SnapshotStatus | null = null;

  constructor() {
    super({ highWaterMark: COALESCE_BYTES });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.status.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = this.status.finish();
    callback();
  }
}
