import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { describeError } from "../../src/errors.ts";
import { S3Store, type S3StoreOptions } from "../../src/store/s3.ts";
import type { S3Settings } from "../../src/store/s3-settings.ts";
import { NotFoundError } from "../../src/store/store.ts";
import { makePki } from "../fixtures/pki.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { runStoreConformance } from "./conformance.ts";

const MiB = 1024 * 1024;
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

for (const conditional of [false, true]) {
  runStoreConformance(
    conditional
      ? "S3 (s3rver with conditional writes, the AWS behaviour)"
      : "S3 (s3rver, which ignores If-None-Match)",
    async () => {
      const server = await startS3Server({ conditionalWrites: conditional });
      await server.createBucket("conformance");
      const store = new S3Store({
        bucket: "conformance",
        prefix: "backups/cluster-a",
        settings: { endpoint: server.endpoint, partSize: 5 * MiB, retryBaseDelayMs: 10 },
        credentials: CREDENTIALS,
      });
      return {
        store,
        async cleanup() {
          store.destroy();
          const leftovers = inFlightUploads(server.directory, "conformance");
          await server.stop();
          // The aborted and failed puts of the suite left no multipart upload behind.
          assert.deepEqual(leftovers, []);
        },
        exclusiveCreate: conditional,
      };
    },
  );
}

/** Multipart uploads s3rver still holds for a bucket (it keeps each in a directory under `._S3rver_uploads`). */
function inFlightUploads(directory: string, bucket: string): string[] {
  try {
    return readdirSync(join(directory, bucket, "._S3rver_uploads"));
  } catch {
    return [];
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function makeStore(
  endpoint: string,
  bucket: string,
  settings: S3Settings = {},
  extra: Partial<S3StoreOptions> = {},
) {
  return new S3Store({
    bucket,
    settings: { endpoint, partSize: 5 * MiB, retryBaseDelayMs: 5, ...settings },
    credentials: CREDENTIALS,
    ...extra,
  });
}

/** The one line the CLI would print for an error, and a check that it names no secret. */
function userLine(err: unknown, secret: string): string {
  const line = describeError(err);
  assert.ok(!line.includes(secret), `the message shows the secret: ${line}`);
  assert.ok(!line.includes("\n"), "the message is more than one line");
  return line;
}

/** An HTTP proxy in front of s3rver that can answer some requests itself. */
async function startProxy(
  target: string,
  intercept: (req: { method: string; url: string }) => { status: number; code: string } | undefined,
): Promise<{
  endpoint: string;
  seen: { method: string; url: string }[];
  maxConcurrentParts: () => number;
  close(): Promise<void>;
}> {
  const seen: { method: string; url: string }[] = [];
  let partsNow = 0;
  let partsMax = 0;
  const targetUrl = new URL(target);
  const server: Server = createServer((req, res) => {
    const info = { method: req.method ?? "", url: req.url ?? "" };
    seen.push(info);
    if (isUploadPart(info)) {
      partsMax = Math.max(partsMax, ++partsNow);
      res.on("close", () => partsNow--);
    }
    const answer = intercept(info);
    if (answer) {
      req.resume();
      req.on("end", () => {
        const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${answer.code}</Code><Message>injected</Message></Error>`;
        res.writeHead(answer.status, {
          "content-type": "application/xml",
          "content-length": Buffer.byteLength(xml),
        });
        res.end(xml);
      });
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
    seen,
    maxConcurrentParts: () => partsMax,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const isUploadPart = (r: { method: string; url: string }) =>
  r.method === "PUT" && r.url.includes("partNumber=") && r.url.includes("uploadId=");

describe("S3Store against s3rver", () => {
  let server: TestS3Server;
  before(async () => {
    server = await startS3Server();
    await server.createBucket("backups");
  });
  after(async () => {
    await server.stop();
  });

  test("a wrong secret key is one line naming the credentials, without the secret", async () => {
    const secret = "wrong-secret-Zq8x3vK1";
    const store = new S3Store({
      bucket: "backups",
      settings: { endpoint: server.endpoint },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: secret },
    });
    try {
      const putErr = await store.put("k", Readable.from([Buffer.from("x")])).catch((err: unknown) => err);
      const line = userLine(putErr, secret);
      assert.match(line, /^upload s3:\/\/backups\/k: S3 rejected the credentials \(SignatureDoesNotMatch\)/);
      assert.match(line, /check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY or the profile/);
      const listErr = await (async () => {
        for await (const _ of store.list()) break;
      })().catch((err: unknown) => err);
      assert.match(userLine(listErr, secret), /S3 rejected the credentials/);
    } finally {
      store.destroy();
    }
  });

  test("a missing bucket says so", async () => {
    const store = makeStore(server.endpoint, "no-such-bucket");
    try {
      const err = await store.put("k", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
      assert.match(userLine(err, "S3RVER-never"), /bucket no-such-bucket does not exist \(create it/);
      const listErr = await (async () => {
        for await (const _ of store.list()) break;
      })().catch((e: unknown) => e);
      assert.match(describeError(listErr), /bucket no-such-bucket does not exist/);
    } finally {
      store.destroy();
    }
  });

  test("an unreachable endpoint says so", async () => {
    const dead = await startS3Server();
    const endpoint = dead.endpoint;
    await dead.stop();
    const store = makeStore(endpoint, "backups", { maxAttempts: 3 });
    try {
      const err = await store.stat("k").catch((e: unknown) => e);
      assert.match(describeError(err), new RegExp(`cannot connect to ${endpoint}: connection refused`));
    } finally {
      store.destroy();
    }
  });

  test("multipart: a body of several parts, uploaded two at a time, reads back whole", async () => {
    const bytes = randomBytes(23 * MiB + 5);
    const proxy = await startProxy(server.endpoint, () => undefined);
    const store = makeStore(proxy.endpoint, "backups", { concurrency: 2 });
    try {
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < bytes.length; i += 100_000) yield bytes.subarray(i, i + 100_000);
        })(),
      );
      assert.deepEqual(await store.put("multi/part.bin", body), { size: bytes.length });
      assert.equal(proxy.seen.filter(isUploadPart).length, 5, "five parts of 5 MiB");
      assert.equal(proxy.maxConcurrentParts(), 2);
      assert.equal(sha256(await readAll(await store.get("multi/part.bin"))), sha256(bytes));
    } finally {
      store.destroy();
      await proxy.close();
    }
  });

  test("list pages past 1000 objects", async () => {
    const store = makeStore(server.endpoint, "backups");
    try {
      const seeded = Array.from({ length: 1500 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      server.seedObjects(
        "backups",
        seeded.map((k) => [k, k]),
      );
      // Two through the API as well, one sorting before and one after the seeded ones.
      await store.put("many/-first", Readable.from([Buffer.from("a")]));
      await store.put("many/~last", Readable.from([Buffer.from("z")]));
      const listed: string[] = [];
      for await (const info of store.list("many/")) listed.push(info.key);
      assert.equal(listed.length, seeded.length + 2);
      assert.deepEqual(listed.sort(), ["many/-first", ...seeded, "many/~last"].sort());
    } finally {
      store.destroy();
    }
  });

  test("a 503 SlowDown and a 500 on upload parts are retried and the object is right", async () => {
    let failures = 0;
    const proxy = await startProxy(server.endpoint, (r) => {
      if (!isUploadPart(r) || failures >= 2) return undefined;
      failures++;
      return failures === 1 ? { status: 503, code: "SlowDown" } : { status: 500, code: "InternalError" };
    });
    const store = makeStore(proxy.endpoint, "backups", { concurrency: 1 });
    try {
      const bytes = randomBytes(12 * MiB);
      await store.put("retried.bin", Readable.from([bytes]));
      assert.equal(failures, 2);
      // Three parts, two of them refused once: five UploadPart requests.
      assert.equal(proxy.seen.filter(isUploadPart).length, 5);
      assert.equal(sha256(await readAll(await store.get("retried.bin"))), sha256(bytes));
    } finally {
      store.destroy();
      await proxy.close();
    }
  });

  test("a 403 on a part is not retried: the put fails, says access denied and leaves nothing", async () => {
    const proxy = await startProxy(server.endpoint, (r) =>
      isUploadPart(r) ? { status: 403, code: "AccessDenied" } : undefined,
    );
    const store = makeStore(proxy.endpoint, "backups", { concurrency: 1 });
    try {
      const err = await store
        .put("denied.bin", Readable.from([randomBytes(6 * MiB)]))
        .catch((e: unknown) => e);
      assert.match(describeError(err), /S3 denied access to bucket backups/);
      assert.equal(proxy.seen.filter(isUploadPart).length, 1);
      assert.ok(
        proxy.seen.some((r) => r.method === "DELETE" && r.url.includes("uploadId=")),
        "upload aborted",
      );
      assert.equal(await store.stat("denied.bin"), null);
    } finally {
      store.destroy();
      await proxy.close();
    }
  });

  test("interop: the AWS CLI reads what we put, and we read what it puts", async () => {
    const home = mkdtempSync(join(tmpdir(), "aws-cli-"));
    writeFileSync(join(home, "config"), "[default]\ns3 =\n    addressing_style = path\n");
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
      AWS_CONFIG_FILE: join(home, "config"),
      AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_PAGER: "",
    };
    const aws = (args: string[]) =>
      promisify(execFile)("/usr/bin/aws", ["--endpoint-url", server.endpoint, ...args], {
        env,
        encoding: "buffer",
        maxBuffer: 64 * MiB,
      });
    const store = makeStore(server.endpoint, "backups");
    try {
      const ours = randomBytes(7 * MiB + 3);
      await store.put("interop/ours.bin", Readable.from([ours]));
      const { stdout } = await aws(["s3", "cp", "s3://backups/interop/ours.bin", "-"]);
      assert.equal(sha256(stdout), sha256(ours));

      const theirs = randomBytes(300_000);
      const file = join(home, "theirs.bin");
      writeFileSync(file, theirs);
      await aws(["s3", "cp", file, "s3://backups/interop/theirs.bin"]);
      assert.equal(sha256(await readAll(await store.get("interop/theirs.bin"))), sha256(theirs));
    } finally {
      store.destroy();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

test("the server dying mid-upload makes put reject, and no object is there after a restart", async () => {
  const directory = mkdtempSync(join(tmpdir(), "s3rver-restart-"));
  let server = await startS3Server({ directory });
  await server.createBucket("crash");
  const warnings: string[] = [];
  const store = makeStore(
    server.endpoint,
    "crash",
    { maxAttempts: 2 },
    { warn: (line) => warnings.push(line) },
  );
  try {
    const body = new PassThrough();
    body.write(randomBytes(6 * MiB));
    const put = store.put("cut.bin", body);
    await sleep(400);
    await server.stop({ force: true, keepFiles: true });
    body.end(randomBytes(6 * MiB));
    const err = await put.catch((e: unknown) => e);
    assert.ok(err instanceof Error, "put rejected");
    assert.match(describeError(err), /^upload s3:\/\/crash\/cut\.bin: cannot connect to/);
    assert.match(warnings.join("\n"), /could not abort the multipart upload of s3:\/\/crash\/cut\.bin/);

    server = await startS3Server({ directory, port: server.port });
    assert.equal(await store.stat("cut.bin"), null);
    await assert.rejects(store.get("cut.bin"), NotFoundError);
    const listed: string[] = [];
    for await (const info of store.list()) listed.push(info.key);
    assert.deepEqual(listed, []);
  } finally {
    store.destroy();
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
});

describe("S3Store over TLS", () => {
  let pkiDir: string;
  let caCert: string;
  let server: TestS3Server;
  before(async () => {
    pkiDir = mkdtempSync(join(tmpdir(), "s3-tls-"));
    const pki = makePki(pkiDir);
    caCert = pki.caCert;
    server = await startS3Server({
      tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) },
    });
    await server.createBucket("tls");
  });
  after(async () => {
    await server.stop();
    rmSync(pkiDir, { recursive: true, force: true });
  });

  test("works with the CA passed", async () => {
    const store = makeStore(server.endpoint, "tls", { caFile: caCert });
    try {
      await store.put("a", Readable.from([Buffer.from("over tls")]));
      assert.equal((await readAll(await store.get("a"))).toString(), "over tls");
    } finally {
      store.destroy();
    }
  });

  test("without the CA fails with one clear TLS line", async () => {
    const store = makeStore(server.endpoint, "tls");
    try {
      const err = await store.put("b", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
      const line = describeError(err);
      assert.match(line, new RegExp(`TLS verification of ${server.endpoint} failed: `));
      assert.match(line, /\(pass --s3-ca FILE with the CA bundle, or --s3-insecure-skip-tls-verify\)$/);
    } finally {
      store.destroy();
    }
  });

  test("works with verification off, and warns every time", async () => {
    const warnings: string[] = [];
    const store = makeStore(
      server.endpoint,
      "tls",
      { insecureSkipTlsVerify: true },
      { warn: (l) => warnings.push(l) },
    );
    try {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /TLS certificate verification is DISABLED/);
      await store.put("c", Readable.from([Buffer.from("insecure")]));
      assert.equal((await readAll(await store.get("c"))).toString(), "insecure");
    } finally {
      store.destroy();
    }
  });
});
