/**
 * S3 conditional creates under faults, through a proxy in front of s3rver (with the fixture's stand-in for AWS's
 * If-None-Match): a create whose first answer is lost and whose retry then gets 412 recognises its own object; a
 * 409 ConditionalRequestConflict is retried; a service that refuses the header (501 NotImplemented) gets
 * unconditional writes after a look, reported as not exclusive.
 */
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { S3Store } from "../../src/store/s3.ts";
import { AlreadyExistsError } from "../../src/store/store.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

type Action = "forward" | "forward-then-fail" | { status: number; code: string };

/** Forwards to `target`; `decide` may answer a request itself, or forward it and then answer 503 (a lost answer). */
async function startProxy(
  target: string,
  decide: (req: { method: string; url: string; conditional: boolean }) => Action,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const targetUrl = new URL(target);
  const server: Server = createServer((req, res) => {
    const info = {
      method: req.method ?? "",
      url: req.url ?? "",
      conditional: req.headers["if-none-match"] === "*",
    };
    const action = decide(info);
    const answer = (status: number, code: string) => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;
      res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(xml) });
      res.end(xml);
    };
    if (typeof action === "object") {
      req.resume();
      req.on("end", () => answer(action.status, action.code));
      return;
    }
    const upstream = request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        if (action === "forward-then-fail") {
          // The write happened upstream; the client never learns it.
          up.resume();
          up.on("end", () => answer(503, "SlowDown"));
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("S3 conditional creates under faults", () => {
  let s3: TestS3Server;
  before(async () => {
    s3 = await startS3Server({ conditionalWrites: true });
    await s3.createBucket("b");
  });
  after(async () => {
    await s3.stop();
  });

  async function withStore(decide: Parameters<typeof startProxy>[1], fn: (store: S3Store) => Promise<void>) {
    const proxy = await startProxy(s3.endpoint, decide);
    const store = new S3Store({
      bucket: "b",
      prefix: `p${Math.random().toString(16).slice(2)}`,
      settings: { endpoint: proxy.endpoint, retryBaseDelayMs: 5, partSize: 5 * 1024 * 1024 },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    try {
      // The first small create teaches the store that the service honours the condition.
      await store.put("learn", Readable.from([Buffer.from("x")]), { ifAbsent: true });
      assert.equal(store.conditionalWrites, true);
      await fn(store);
    } finally {
      store.destroy();
      await proxy.close();
    }
  }

  test("a create whose answer was lost, retried into 412, is recognised as our own by its owner", async () => {
    let lost = 0;
    await withStore(
      (r) =>
        r.method === "PUT" && r.conditional && r.url.includes("/mine") && lost++ === 0
          ? "forward-then-fail"
          : "forward",
      async (store) => {
        const result = await store.put("mine", Readable.from([Buffer.from("claim")]), {
          ifAbsent: true,
          owner: "a".repeat(32),
        });
        assert.deepEqual(result, { size: 5, exclusive: true });
        assert.equal(lost, 2, "the first answer was lost and the create was sent again");
        // Someone else's object under a key is still refused, also after a lost answer.
        await store.put("theirs", Readable.from([Buffer.from("other")]), { owner: "b".repeat(32) });
        await assert.rejects(
          store.put("theirs", Readable.from([Buffer.from("claim")]), {
            ifAbsent: true,
            owner: "a".repeat(32),
          }),
          AlreadyExistsError,
        );
      },
    );
  });

  test("a multipart create whose completion answer was lost, retried into 412, is ours by owner", async () => {
    let lost = 0;
    await withStore(
      (r) =>
        r.method === "POST" && r.conditional && r.url.includes("uploadId=") && lost++ === 0
          ? "forward-then-fail"
          : "forward",
      async (store) => {
        const body = Buffer.alloc(6 * 1024 * 1024 + 5, 3);
        const result = await store.put("big", Readable.from([body]), {
          ifAbsent: true,
          owner: "c".repeat(32),
        });
        assert.deepEqual(result, { size: body.length, exclusive: true });
        assert.equal(lost, 2, "the completion was sent again");
        assert.equal((await store.stat("big"))?.size, body.length);
      },
    );
  });

  test("409 ConditionalRequestConflict is retried", async () => {
    let conflicts = 0;
    await withStore(
      (r) =>
        r.method === "PUT" && r.conditional && r.url.includes("/contended") && conflicts++ === 0
          ? { status: 409, code: "ConditionalRequestConflict" }
          : "forward",
      async (store) => {
        const result = await store.put("contended", Readable.from([Buffer.from("x")]), { ifAbsent: true });
        assert.equal(result.exclusive, true);
        assert.equal(conflicts, 2);
      },
    );
  });

  test("a service that refuses If-None-Match gets a look and an unconditional write, not exclusive", async () => {
    const proxy = await startProxy(s3.endpoint, (r) =>
      r.conditional ? { status: 501, code: "NotImplemented" } : "forward",
    );
    const store = new S3Store({
      bucket: "b",
      prefix: "refusing",
      settings: { endpoint: proxy.endpoint, retryBaseDelayMs: 5 },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    try {
      const first = await store.put("k", Readable.from([Buffer.from("one")]), { ifAbsent: true });
      assert.deepEqual(first, { size: 3, exclusive: false });
      assert.equal(store.conditionalWrites, false);
      await assert.rejects(
        store.put("k", Readable.from([Buffer.from("two")]), { ifAbsent: true }),
        AlreadyExistsError,
      );
    } finally {
      store.destroy();
      await proxy.close();
    }
  });
});
