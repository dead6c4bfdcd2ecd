import type { Readable } from "node:stream";

/**
 * Cuts a stream into parts of exactly `partSize` bytes, the last one shorter (an empty stream yields nothing).
 * Each part is a fresh buffer filled by copying, so the consumer may keep it while the next one fills: memory is
 * `partSize` per part the consumer holds plus one being filled. Reading is pull-driven, so the stream keeps its
 * backpressure. A stream error is thrown from `next()`.
 */
export async function* readParts(body: Readable, partSize: number): AsyncGenerator<Buffer, void, undefined> {
  let part = Buffer.allocUnsafe(partSize);
  let filled = 0;
  for await (const chunk of body) {
    const bytes: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(partSize - filled, bytes.length - offset);
      part.set(bytes.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === partSize) {
        yield part;
        part = Buffer.allocUnsafe(partSize);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield part.subarray(0, filled);
}
