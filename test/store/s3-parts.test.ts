import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
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
});
