/**
 * Coalesce joins small chunks into pieces of at least its size, passes long chunks through as they are, and frees
 * the handed-over chunks it copied (the snapshot's gRPC messages) while leaving every other chunk alone.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { handOver } from "../../src/stages/buffer-handover.ts";
import { Coalesce } from "../../src/stages/coalesce.ts";
import { collect } from "./streams.ts";

describe("Coalesce", () => {
  it("joins, passes long chunks through, and frees only the handed-over chunks it copied", async () => {
    const data = randomBytes(300_000);
    const cuts = [0, 1000, 5000, 9000, 200_000, 201_000, 300_000]; // the 191,000-byte chunk passes through
    const chunks = cuts.slice(1).map((end, i) => {
      const own = Buffer.alloc(end - cuts[i]!);
      data.copy(own, 0, cuts[i], end);
      return i === 2 ? own : handOver(own);
    });
    const out = collect();
    const pieces: number[] = [];
    const coalesce = new Coalesce(100_000);
    coalesce.on("data", (p: Buffer) => pieces.push(p.length));
    await pipeline(Readable.from(chunks), coalesce, out.sink);
    assert.deepEqual(out.result(), data);
    assert.deepEqual(
      pieces,
      [9000 + 191_000, 100_000],
      "small chunks joined; the last ones flushed together",
    );
    assert.deepEqual(
      chunks.map((c) => c.length),
      [0, 0, 4000, 0, 0, 0],
      "the copied handed-over chunks are freed; the unmarked one is intact",
    );
  });
});
