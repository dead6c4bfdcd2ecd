import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { S3Store } from "../../src/store/s3.ts";
import { copyObjectInBucket, readObjectRange, rewriteHeadByPartCopy } from "../../src/store/s3-part-copy.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("S3 part copy (s3rver)", () => {
  let s3: TestS3Server;
  let store: S3Store;
  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket("b");
    store = new S3Store({
      bucket: "b",
      prefix: "p",
      settings: { endpoint: s3.endpoint, partSize: 5 * MiB, retryBaseDelayMs: 5 },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
  });
  after(async () => {
    store?.destroy();
    await s3?.stop();
  });

  test("the head is replaced, the rest copied in several ranges, byte for byte", async () => {
    const body = randomBytes(13 * MiB + 12345);
    const source = "prod-2026-11-30T10:00:00Z.snap.age";
    await store.put(source, Readable.from([body]));
    const head = randomBytes(300);
    const done = await rewriteHeadByPartCopy(store, {
      source,
      target: `${source}.copy`,
      head,
      skip: 120,
      owner: "0123456789abcdef",
      firstPartSize: 5 * MiB,
      copyPartSize: 5 * MiB,
    });
    assert.equal(done.parts, 3);
    assert.equal(done.sentBytes, 5 * MiB);
    const got = await readAll(await store.get(`${source}.copy`));
    assert.ok(got.equals(Buffer.concat([head, body.subarray(120)])), "rewritten object differs");
    assert.equal((await store.stat(`${source}.copy`))?.owner, "0123456789abcdef");
    assert.ok((await readObjectRange(store, `${source}.copy`, 300)).equals(head));

    await copyObjectInBucket(store, `${source}.copy`, source);
    assert.ok((await readAll(await store.get(source))).equals(got));
    assert.equal((await store.stat(source))?.owner, "0123456789abcdef", "owner metadata kept by the copy");
  });

  test("an object that fits in the first part is refused (it is rewritten whole instead)", async () => {
    await store.put("small", Readable.from([randomBytes(1000)]));
    await assert.rejects(
      rewriteHeadByPartCopy(store, {
        source: "small",
        target: "small.copy",
        head: Buffer.alloc(10),
        skip: 5,
      }),
      /too small/,
    );
  });
});
