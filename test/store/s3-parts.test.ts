import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { handOver } from "../../src/stages/buffer-handover.ts";
import { readParts } from "../../src/store/s3-parts.ts";

async function parts(chunks: Buffer[], partSize: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const part of readParts(Readable.from(chunks), partSize)) out.push(part);
  return out;
}

describe("readParts", () => {
  const partSize = 10;
  for (const total of [0, 1, 9, 10, 11, 20, 29, 30, 31]) {
    for (const chunk of [1, 3, 10, 64]) {
      test(`${total} bytes in chunks of ${chunk}`, async () => {
        const bytes = randomBytes(total);
        const chunks: Buffer[] = [];
        for (let i = 0; i < total; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
        const got = await parts(chunks, partSize);
        assert.deepEqual(Buffer.concat(got), bytes);
        assert.equal(got.length, Math.ceil(total / partSize));
        for (const p of got.slice(0, -1)) assert.equal(p.length, partSize);
      });
    }
  }

  test("parts do not share memory with one another", async () => {
    const got = await parts([randomBytes(25)], 10);
    const copy = Buffer.from(got[0]!);
    got[1]!.fill(0);
    assert.deepEqual(got[0], copy);
  });

  test("a stream shorter than a part takes no part buffer; a longer one fills the buffers it takes", async () => {
    let taken = 0;
    const take = () => {
      taken++;
      return Buffer.alloc(10);
    };
    const short: Buffer[] = [];
    for await (const p of readParts(Readable.from([Buffer.from("abc"), Buffer.from("def")]), 10, take))
      short.push(p);
    assert.equal(taken, 0);
    assert.deepEqual(short, [Buffer.from("abcdef")]);

    const bytes = randomBytes(25);
    const long: Buffer[] = [];
    for await (const p of readParts(Readable.from([bytes.subarray(0, 4), bytes.subarray(4)]), 10, take))
      long.push(p);
    assert.equal(taken, 3);
    assert.deepEqual(Buffer.concat(long), bytes);
  });

  test("a stream error is thrown from the generator", async () => {
    const boom = new Error("source died");
    const body = new Readable({ read() {} });
    body.push(randomBytes(15));
    setImmediate(() => body.destroy(boom));
    await assert.rejects(
      (async () => {
        for await (const _ of readParts(body, 10));
      })(),
      (err) => err === boom,
    );
  });

  test("chunks come one by one as pushed, even when many wait, and handed-over ones are freed once copied", async () => {
    for (const total of [7, 25, 100]) {
      const bytes = randomBytes(total);
      const chunks: Buffer[] = [];
      for (let i = 0; i < total; i += 3) {
        const own = Buffer.alloc(Math.min(3, total - i)); // its own memory: Buffer.from would slice Node's pool
        bytes.copy(own, 0, i, i + own.length);
        chunks.push(handOver(own));
      }
      // Everything is buffered in the stream before the first read: a plain `for await` would join it all
      // into one new Buffer, and none of the handed-over chunks could be freed.
      const body = new Readable({ read() {} });
      for (const c of chunks) body.push(c);
      body.push(null);
      const got: Buffer[] = [];
      for await (const p of readParts(body, 10)) got.push(Buffer.from(p));
      assert.deepEqual(Buffer.concat(got), bytes, `${total} bytes`);
      for (const [i, c] of chunks.entries()) assert.equal(c.length, 0, `${total} bytes: chunk ${i} is freed`);
    }
  });

  test("a body destroyed before its end is an error, never a short last part", async () => {
    const body = new Readable({ read() {} });
    body.push(randomBytes(15));
    setImmediate(() => body.destroy());
    const got: Buffer[] = [];
    await assert.rejects(
      (async () => {
        for await (const p of readParts(body, 10)) got.push(p);
      })(),
      { code: "ERR_STREAM_PREMATURE_CLOSE" },
    );
    assert.equal(got.length, 1, "only the full part came out");
  });

  test("a caller that stops early destroys the body, and reading keeps the stream's backpressure", async () => {
    let produced = 0;
    const body = new Readable({
      highWaterMark: 16,
      read() {
        produced += 8;
        this.push(randomBytes(8));
      },
    });
    for await (const _ of readParts(body, 10)) {
      await new Promise((r) => setTimeout(r, 20));
      break;
    }
    assert.ok(body.destroyed, "destroyed on an early return");
    assert.ok(produced <= 64, `read ${produced} bytes ahead for one 10-byte part`);
  });
});
