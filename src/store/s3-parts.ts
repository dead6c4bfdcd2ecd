import type { Readable } from "node:stream";

/**
 * Cuts a stream into parts of exactly `partSize` bytes, the last one shorter (an empty stream yields nothing).
 *
 * Until the first part is full the chunks are only gathered, so a stream shorter than one part costs its own
 * length and comes out as one exact-size buffer. From then on every part is copied into a buffer from `take`
 * (which must return `partSize` bytes): a caller that hands back the buffers of finished parts keeps memory at
 * `partSize` per part it holds plus one being filled, without waiting for the garbage collector. Reading is
 * pull-driven, so the stream keeps its backpressure. A stream error is thrown from `next()`.
 */
export async function* readParts(
  body: Readable,
  partSize: number,
  take: () => Buffer = () => Buffer.allocUnsafe(partSize),
): AsyncGenerator<Buffer, void, undefined> {
  let gathered: Uint8Array[] = [];
  let gatheredBytes = 0;
  let multipart = false;
  let part: Buffer | undefined;
  let filled = 0;
  for await (const chunk of body) {
    let bytes: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    if (!multipart) {
      if (gatheredBytes + bytes.length < partSize) {
        gathered.push(bytes);
        gatheredBytes += bytes.length;
        continue;
      }
      multipart = true;
      part = take();
      for (const g of gathered) {
        part.set(g, filled);
        filled += g.length;
      }
      gathered = [];
    }
    while (bytes.length > 0) {
      part ??= take();
      const n = Math.min(partSize - filled, bytes.length);
      part.set(bytes.subarray(0, n), filled);
      filled += n;
      bytes = bytes.subarray(n);
      if (filled === partSize) {
        const full = part;
        part = undefined;
        filled = 0;
        yield full;
      }
    }
  }
  if (!multipart && gatheredBytes > 0) yield Buffer.concat(gathered, gatheredBytes);
  if (multipart && part && filled > 0) yield part.subarray(0, filled);
}
