import { finished, type Readable } from "node:stream";
import { releaseHandedOver } from "../stages/buffer-handover.ts";

/**
 * Cuts a stream into parts of exactly `partSize` bytes, the last one shorter (an empty stream yields nothing).
 *
 * Until the first part is full the chunks are only gathered, so a stream shorter than one part costs its own
 * length and comes out as one exact-size buffer. From then on every part is copied into a buffer from `take`
 * (which must return `partSize` bytes): a caller that hands back the buffers of finished parts keeps memory at
 * `partSize` per part it holds plus one being filled, without waiting for the garbage collector. A chunk handed
 * over to it (stages/buffer-handover.ts) is freed once copied. Reading is pull-driven, so the stream keeps its
 * backpressure. A stream error is thrown from `next()`.
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
  for await (const chunk of chunksAsWritten(body)) {
    const whole: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    let bytes = whole;
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
        releaseHandedOver(g);
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
    releaseHandedOver(whole);
  }
  if (!multipart && gatheredBytes > 0) {
    const only = Buffer.concat(gathered, gatheredBytes);
    for (const g of gathered) releaseHandedOver(g);
    yield only;
  }
  if (multipart && part && filled > 0) yield part.subarray(0, filled);
}

/**
 * The chunks of `body` one by one, as its last stage pushed them. (`for await` on a Readable takes whatever is
 * buffered in one `read()`, which joins two or more chunks into a new Buffer: a copy of the upload, and a
 * Buffer nobody had handed over, so its pieces could not be freed at once.) At most two chunks wait here; the
 * stream is paused until they are taken. Ends when `body` ends; throws its error, or a premature close; on
 * an early return or a throw of the caller `body` is destroyed, as `for await` does.
 */
async function* chunksAsWritten(body: Readable): AsyncGenerator<Buffer | string, void, undefined> {
  const queue: (Buffer | string)[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const onData = (chunk: Buffer | string) => {
    queue.push(chunk);
    if (queue.length >= 2) body.pause();
    wake?.();
  };
  const stopWatching = finished(body, { writable: false }, (err) => {
    if (err) failure = err;
    ended = true;
    wake?.();
  });
  body.on("data", onData);
  try {
    body.resume();
    for (;;) {
      if (failure) throw failure;
      const next = queue.shift();
      if (next !== undefined) {
        if (queue.length === 0 && !ended) body.resume();
        yield next;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  } finally {
    body.off("data", onData);
    stopWatching();
    if (!ended) body.destroy();
  }
}
