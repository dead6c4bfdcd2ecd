/**
 * `rekey` on S3 end to end with the built CLI: on the real MinIO (which enforces the 5 MiB minimum of non-last
 * parts) a backup of about 16 MiB is rekeyed through a loopback counting proxy, which shows that the bytes the
 * client sends are about the header plus the first 5 MiB part, not the object (the rest is UploadPartCopy);
 * the old key is refused, the new one restores, the payload after the header is unchanged and the manifest
 * describes the new object. Then the same against s3rver, whose missing UploadPartCopy makes rekey say so once
 * and stream instead.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { readHeader } from "../../src/age/header.ts";
import { S3Store } from "../../src/store/s3.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import { startCountingProxy, startNoPartCopyProxy } from "../fixtures/counting-proxy.ts";
import { startMinio } from "../fixtures/minio-server.ts";
import { minioPeer, skipReason } from "../fixtures/peers.ts";
import { prepareRekey, type RekeySetup } from "../fixtures/rekey-setup.ts";
import { startS3Server } from "../fixtures/s3-server.ts";

const MiB = 1024 * 1024;

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function payloadSha(file: Buffer): string {
  const h = readHeader(file);
  assert.ok(h);
  return sha256(file.subarray(h.size));
}

describe("rekey on S3", () => {
  let setup: RekeySetup;

  before(async () => {
    setup = await prepareRekey("e2e-rekey-s3", 3600);
    const size = statSync(setup.snapshot).size;
    assert.ok(size > 12 * MiB, `snapshot is only ${size} bytes`);
  });
  after(() => {
    if (setup) rmSync(setup.work, { recursive: true, force: true });
  });

  async function scenario(
    server: { endpoint: string; accessKeyId: string; secretAccessKey: string; port: number },
    diag: (line: string) => void,
    front: { host: string; port: number } = { host: "127.0.0.1", port: server.port },
  ): Promise<{ up: number; down: number; size: number; stderr: string; method: string }> {
    const env = (endpoint: string) => ({
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: endpoint,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_EC2_METADATA_DISABLED: "true",
      ETCD_BACKUP_S3_PART_SIZE: "5",
    });
    const to = "s3://backups/prod";
    const { work, snapshot, a, b } = setup;
    const name = await setup.saveToOldKey(to, "prod", { env: env(server.endpoint) });
    const store = new S3Store({
      bucket: "backups",
      prefix: "prod",
      settings: { endpoint: server.endpoint, retryBaseDelayMs: 5 },
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    try {
      const before = await readAll(await store.get(name));
      const proxy = await startCountingProxy(front);
      let r: Awaited<ReturnType<typeof runCli>>;
      try {
        r = await runCli(
          [...setup.rekeyArgs(name, to), "-o", "json"],
          // No part size given: the sent first part is S3's 5 MiB minimum whatever the store's part size.
          { env: { ...env(proxy.endpoint), ETCD_BACKUP_S3_PART_SIZE: "" } },
        );
      } finally {
        await proxy.stop();
      }
      assertOk(r);
      const [item] = JSON.parse(r.stdout) as {
        action: string;
        outcome: { method: string; sentBytes: number };
      }[];
      assert.equal(item?.action, "rekeyed");
      const afterBytes = await readAll(await store.get(name));
      assert.equal(afterBytes.length, before.length, "one X25519 stanza for another: the same size");
      assert.equal(payloadSha(afterBytes), payloadSha(before), "the payload after the header changed");
      assert.notEqual(sha256(afterBytes), sha256(before));
      const manifest = JSON.parse((await readAll(await store.get(`${name}.json`))).toString()) as {
        object: { size: number; sha256: string };
        encryption: { recipients: { publicKey: string }[] };
      };
      assert.deepEqual(manifest.object, { size: afterBytes.length, sha256: sha256(afterBytes) });
      assert.deepEqual(
        manifest.encryption.recipients.map((x) => x.publicKey),
        [b.recipient],
      );
      const keys: string[] = [];
      for await (const o of store.list("")) keys.push(o.key);
      assert.deepEqual(keys.sort(), [name, `${name}.json`].sort(), "rekey left objects behind");

      const out = join(work, `restored-${server.port}.db`);
      assertOk(
        await runCli(["restore", name, "--to", to, "-i", b.identity, "--to-file", out], {
          env: env(server.endpoint),
        }),
      );
      assert.equal(sha256(readFileSync(out)), sha256(readFileSync(snapshot)));
      assertOneLineError(
        await runCli(["restore", name, "--to", to, "-i", a.identity, "--to-file", `${out}.a`], {
          env: env(server.endpoint),
        }),
        1,
        /identit/i,
      );
      const verify = await runCli(["verify", name, "--to", to, "-i", b.identity], {
        env: env(server.endpoint),
      });
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      diag(
        `${name}: ${before.length} bytes; client sent ${proxy.up} bytes, received ${proxy.down} bytes (${item!.outcome.method}, body sent ${item!.outcome.sentBytes})`,
      );
      return {
        up: proxy.up,
        down: proxy.down,
        size: before.length,
        stderr: r.stderr,
        method: item!.outcome.method,
      };
    } finally {
      store.destroy();
    }
  }

  test("MinIO: part copy; the client sends about the header and one 5 MiB part", {
    skip: skipReason(minioPeer(), "MinIO"),
  }, async (t) => {
    const minio = await startMinio();
    try {
      await minio.createBucket("backups");
      const got = await scenario(minio, (l) => t.diagnostic(l));
      assert.equal(got.method, "part copy");
      assert.equal(got.stderr, "", "no notice expected where part copy works");
      // The first part (5 MiB, the new header inside it) and a few KiB of requests: not the object's 14+ MiB.
      assert.ok(got.up < 5 * MiB + 256 * 1024, `client sent ${got.up} bytes`);
      assert.ok(got.up < got.size / 2, `client sent ${got.up} of ${got.size} bytes`);
    } finally {
      await minio.stop();
    }
  });

  test("s3rver: part copy (it does not enforce the 5 MiB minimum, MinIO above does)", async (t) => {
    const s3 = await startS3Server();
    try {
      await s3.createBucket("backups");
      const port = Number(new URL(s3.endpoint).port);
      const got = await scenario({ ...s3, port }, (l) => t.diagnostic(l));
      assert.equal(got.method, "part copy");
      assert.ok(got.up < 5 * MiB + 256 * 1024, `client sent ${got.up} bytes`);
    } finally {
      await s3.stop();
    }
  });

  test("a service without UploadPartCopy (stand-in: s3rver behind a proxy answering 501): said once, streamed", async (t) => {
    const s3 = await startS3Server();
    const port = Number(new URL(s3.endpoint).port);
    const refusing = await startNoPartCopyProxy({ host: "127.0.0.1", port });
    try {
      await s3.createBucket("backups");
      const got = await scenario({ ...s3, port }, (l) => t.diagnostic(l), {
        host: "127.0.0.1",
        port: Number(new URL(refusing.endpoint).port),
      });
      assert.equal(got.method, "streamed");
      assert.equal(refusing.refused(), 1, "one refused part copy, then no more tries");
      assert.equal(got.stderr.match(/does not implement UploadPartCopy/g)?.length, 1, got.stderr);
      assert.equal(got.stderr.trim().split("\n").length, 1, got.stderr);
      assert.ok(got.up > got.size, `a streamed rekey sends the object: ${got.up} of ${got.size}`);
    } finally {
      await refusing.stop();
      await s3.stop();
    }
  });
});
