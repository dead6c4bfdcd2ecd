/**
 * Freeing a Buffer at once when its last holder is done (src/stages/buffer-handover.ts): only a Buffer that
 * covers its whole ArrayBuffer can be handed over, release frees exactly the handed-over ones, and the memory
 * really goes (the process's ArrayBuffer total falls without a GC).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  handOver,
  handOverMessage,
  releasedBytes,
  releaseHandedOver,
} from "../../src/stages/buffer-handover.ts";

describe("buffer hand-over", () => {
  it("frees a handed-over Buffer, through itself or its one view, and only once", () => {
    const a = handOver(Buffer.alloc(4096, 1));
    const before = releasedBytes;
    releaseHandedOver(a.subarray(0, 100));
    assert.equal(a.length, 0, "the Buffer is detached");
    assert.equal(releasedBytes - before, 4096);
    releaseHandedOver(a);
    assert.equal(releasedBytes - before, 4096, "a second release does nothing");
  });

  it("leaves alone a Buffer nobody handed over", () => {
    const b = Buffer.alloc(4096, 2);
    releaseHandedOver(b);
    assert.equal(b.length, 4096);
    assert.equal(b[4095], 2);
  });

  it("refuses to mark a slice: of Node's shared pool, or of a larger allocation", () => {
    const pooled = Buffer.from("small");
    assert.ok(pooled.buffer.byteLength > pooled.length, "Node pools small Buffers");
    handOver(pooled);
    releaseHandedOver(pooled);
    assert.equal(pooled.toString(), "small");

    const big = Buffer.alloc(8192, 3);
    const half = handOver(big.subarray(0, 4096));
    releaseHandedOver(half);
    assert.equal(big.length, 8192);
    assert.equal(big[8191], 3);
  });

  it("gives the memory back at once, without waiting for a GC", () => {
    const held = Array.from({ length: 32 }, () => handOver(Buffer.alloc(1 << 20, 7)));
    const full = process.memoryUsage().arrayBuffers;
    for (const b of held) releaseHandedOver(b);
    const after = process.memoryUsage().arrayBuffers;
    assert.ok(full - after >= 31 * (1 << 20), `ArrayBuffer memory ${full} -> ${after}`);
  });

  it("marks a gRPC message only when its memory holds it alone (a 5-byte frame header at most before it)", () => {
    const framed = Buffer.alloc(5 + 1000, 9);
    const message = framed.subarray(5);
    assert.equal(handOverMessage(message), true);
    releaseHandedOver(message.subarray(10, 20)); // the blob inside it, once copied out
    assert.equal(framed.length, 0);

    const shared = Buffer.alloc(2000, 1); // two messages sliced out of one buffer
    assert.equal(handOverMessage(shared.subarray(0, 1000)), false, "something follows it");
    assert.equal(handOverMessage(shared.subarray(1000)), false, "something precedes it");
    releaseHandedOver(shared.subarray(1000));
    assert.equal(shared.length, 2000);
    assert.equal(handOverMessage(Buffer.alloc(0)), false);
  });
});
