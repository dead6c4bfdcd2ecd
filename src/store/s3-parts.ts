import type { Readable } from "node:stream";

/**
 * Cuts a stream into parts of exactly `partSize` bytes, the last one shorter (an empty stream yields nothing).
 * Each part is a fresh buffer, so the consumer may keep it while the next one fills: memory is `partSize` per
 * part the consumer holds plus at most one being gathered. A short stream costs only its own length. Reading is
 * pull-driven, so the stream keeps its backpressure. A stream error is thrown from `next()`.
 */
export async function* readParts(body: Readable, partSize: number): AsyncGenerator<Buffer, void, undefined> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const chunk of body) {
    let bytes: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    while (pendingBytes + bytes.length >= partSize) {
      const take = partSize - pendingBytes;
      pending.push(bytes.subarray(0, take));
      yield Buffer.concat(pending, partSize);
      bytes = bytes.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (bytes.length > 0) {
      pending.push(bytes);
      pendingBytes += bytes.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
