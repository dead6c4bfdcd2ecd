import type { FileHandle } from "node:fs/promises";
import { Writable } from "node:stream";
import { releaseHandedOver } from "../stages/buffer-handover.ts";

/**
 * Writes a stream to an open file and fsyncs it at the end (before `finish`), as `fs.createWriteStream` with
 * `flush: true` does, and frees each chunk handed over to it (stages/buffer-handover.ts) once its write has
 * completed: the local store is where a save's encrypted bytes end. The handle stays open; its owner closes it.
 *
 * 1 MiB of high-water mark: a 16 KiB buffer serialised reading, hashing and writing; 4 MiB held 3 MiB more for
 * nothing. Chunks waiting together go out in one writev.
 */
export class FileSink extends Writable {
  private readonly handle: FileHandle;
  bytesWritten = 0;

  constructor(handle: FileHandle) {
    super({ highWaterMark: 1 << 20 });
    this.handle = handle;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.handle.sync().then(() => callback(), callback);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    let rest = buffers;
    while (rest.length > 0) {
      const { bytesWritten } = await this.handle.writev(rest);
      if (bytesWritten === 0 && rest.some((b) => b.length > 0))
        throw new Error("the file took no bytes (writev 0)");
      this.bytesWritten += bytesWritten;
      rest = afterWritten(rest, bytesWritten);
    }
    for (const b of buffers) releaseHandedOver(b);
  }
}

/** What of `buffers` is left after the first `written` bytes went out (a short write). */
function afterWritten(buffers: Buffer[], written: number): Buffer[] {
  let skip = written;
  let i = 0;
  while (i < buffers.length && skip >= buffers[i]!.length) {
    skip -= buffers[i]!.length;
    i++;
  }
  if (i === buffers.length) return [];
  return [buffers[i]!.subarray(skip), ...buffers.slice(i + 1)];
}
