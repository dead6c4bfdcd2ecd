/**
 * Frees a Buffer's memory the moment its last holder is done with it, instead of when V8's garbage collector
 * next gets to it (issue 22: a save in a 128 MiB pod).
 *
 * Why: a snapshot crosses a save as fresh Buffers, about three times its size in all (Coalesce's pieces, age's
 * output, ...). Their memory lives outside V8's heap, and V8 frees a dead one only at the next full GC, which it
 * starts for outside memory only after tens of MiB more of it. So dead Buffers made up most of save's memory at
 * its peak. Detaching an ArrayBuffer (`transfer(0)`) frees its memory at once, whatever the GC does.
 *
 * The contract, for who owns a Buffer and for how long:
 * - A stage that creates a Buffer and passes it on, keeping no reference and no view of it, may mark it
 *   `handOver(buffer)`. Only a Buffer that covers its whole ArrayBuffer is marked (never a slice of Node's shared
 *   pool, nor of a larger allocation).
 * - Stages in between may pass on the Buffer or one view of it; they must not keep either once passed on, nor
 *   pass on two views of one marked Buffer.
 * - The stage that consumes it (copies it out, or has written it and its write completed) calls
 *   `releaseHandedOver(bufferOrView)`, which frees the memory if the Buffer was marked and does nothing otherwise.
 *   No native operation (a zstd job, a file write, a socket write) may still be reading it then.
 * Marks are kept in a WeakSet of ArrayBuffers: an unmarked Buffer, or one that never reaches a releasing stage,
 * is left to the garbage collector as before.
 */

const handedOver = new WeakSet<ArrayBufferLike>();

/** Bytes freed by `releaseHandedOver` in this process (for tests and measurements). */
export let releasedBytes = 0;

/** Marks `buffer` as handed over to the next stage (see the contract above); returns it. */
export function handOver<T extends Uint8Array>(buffer: T): T {
  if (buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength && buffer.byteLength > 0)
    handedOver.add(buffer.buffer);
  return buffer;
}

/**
 * Marks a received gRPC message's memory as handed over when that memory holds this message alone: at most its
 * 5-byte gRPC frame header before it and nothing after it, as grpc-js delivers a message it joined from several
 * HTTP/2 frames (etcd's 32 KiB Snapshot messages are). A message sliced out of a larger buffer is never marked.
 * Only the message's own decoder may call this: grpc-js keeps no reference to a message it has delivered, and a
 * detached buffer reads as empty in JavaScript, never as another's memory. Returns whether it marked.
 */
export function handOverMessage(message: Uint8Array): boolean {
  const memory = message.buffer;
  if (message.byteOffset > 5 || message.byteOffset + message.byteLength !== memory.byteLength) return false;
  if (message.byteLength === 0) return false;
  handedOver.add(memory);
  return true;
}

/** Frees the memory of a handed-over Buffer (or the one view of it that reached here); else nothing. */
export function releaseHandedOver(buffer: Uint8Array): void {
  const memory = buffer.buffer;
  if (!handedOver.delete(memory)) return;
  releasedBytes += memory.byteLength;
  (memory as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
}
