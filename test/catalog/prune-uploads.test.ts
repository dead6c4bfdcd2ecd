/**
 * prune aborts the multipart uploads a killed S3 save left (older than the grace period), leaves younger ones and
 * other tools' uploads alone, and says so when the service cannot list uploads. The server is s3rver with the
 * fixture's ListMultipartUploads (s3rver has none of its own).
 */
import assert from "node:assert/strict";
import { readdirSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateMultipartUploadCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { backupKey } from "../../src/catalog/names.ts";
import { pruneBackups } from "../../src/catalog/prune.ts";
import { S3Store } from "../../src/store/s3.ts";
import { LeftoversUnsupported } from "../../src/store/store.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { fakeSnapshot, plantBackup } from "./fixtures.ts";

const HOUR = 3_600_000;
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

describe("prune and incomplete multipart uploads", () => {
  let s3: TestS3Server;
  let store: S3Store;
  let client: S3Client;
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);

  /** Starts a multipart upload of `key` (under the store's prefix), sends one part, and dates it `initiated`. */
  async function startUpload(key: string, initiated: Date): Promise<string> {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: "b", Key: key }));
    const UploadId = created.UploadId!;
    await client.send(
      new UploadPartCommand({ Bucket: "b", Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 7) }),
    );
    utimesSync(join(s3.directory, "b", "._S3rver_uploads", UploadId, "key"), initiated, initiated);
    return UploadId;
  }

  const uploadsLeft = () => readdirSync(join(s3.directory, "b", "._S3rver_uploads"));

  before(async () => {
    s3 = await startS3Server();
    await s3.createBucket("b");
    store = new S3Store({
      bucket: "b",
      prefix: "etcd",
      settings: { endpoint: s3.endpoint, retryBaseDelayMs: 10 },
      credentials: CREDENTIALS,
    });
    client = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: CREDENTIALS,
    });
  });
  after(async () => {
    store.destroy();
    client.destroy();
    await s3.stop();
  });

  test("old uploads of backups are aborted, young ones and foreign ones kept; dry run aborts nothing", async () => {
    const name = (cluster: string, hoursAgo: number) =>
      backupKey({
        cluster,
        time: new Date(now.getTime() - hoursAgo * HOUR),
        compression: "zstd",
        encrypted: true,
      });
    await plantBackup(store, fakeSnapshot(1), { cluster: "prod", time: new Date(now.getTime() - 2 * HOUR) });
    const old = await startUpload(`etcd/${name("prod", 30)}`, new Date(now.getTime() - 30 * HOUR));
    const oldManifest = await startUpload(
      `etcd/${name("prod", 40)}.json`,
      new Date(now.getTime() - 40 * HOUR),
    );
    const young = await startUpload(`etcd/${name("prod", 1)}`, new Date(now.getTime() - HOUR));
    const otherCluster = await startUpload(`etcd/${name("dev", 30)}`, new Date(now.getTime() - 30 * HOUR));
    const foreign = await startUpload("etcd/some-other-tool/blob.bin", new Date(now.getTime() - 30 * HOUR));
    const outside = await startUpload(`elsewhere/${name("prod", 30)}`, new Date(now.getTime() - 30 * HOUR));

    const dry = await pruneBackups(store, { last: 10 }, { now, dryRun: true, cluster: "prod" });
    assert.deepEqual(
      dry.uploads.map((u) => [u.uploadId, u.action]),
      [
        [oldManifest, "abort"],
        [old, "abort"],
        [young, "keep"],
      ],
    );
    assert.equal(uploadsLeft().length, 6);

    const real = await pruneBackups(store, { last: 10 }, { now, cluster: "prod" });
    assert.deepEqual(real.failures, []);
    assert.deepEqual(
      real.uploads.filter((u) => u.result === "aborted").map((u) => u.uploadId),
      [oldManifest, old],
    );
    assert.deepEqual(uploadsLeft().sort(), [young, otherCluster, foreign, outside].sort());

    // Without --cluster the other cluster's old upload goes too; the foreign and outside ones never.
    await pruneBackups(store, { last: 10 }, { now });
    assert.deepEqual(uploadsLeft().sort(), [young, foreign, outside].sort());
  });

  test("the part-copy upload of a rekey killed while copying is aborted like a save's", async () => {
    const key = backupKey({
      cluster: "rekeyed",
      time: new Date(now.getTime() - 50 * HOUR),
      compression: "zstd",
      encrypted: true,
    });
    const old = await startUpload(
      `etcd/${key}.rekey-new.0123456789abcdef`,
      new Date(now.getTime() - 30 * HOUR),
    );
    const young = await startUpload(`etcd/${key}.rekey-new.fedcba9876543210`, new Date(now.getTime() - HOUR));
    const report = await pruneBackups(store, { last: 10 }, { now, cluster: "rekeyed" });
    assert.deepEqual(report.failures, []);
    assert.deepEqual(
      report.uploads.map((u) => [u.uploadId, u.action, u.result ?? null]),
      [
        [old, "abort", "aborted"],
        [young, "keep", null],
      ],
    );
    assert.ok(uploadsLeft().includes(young) && !uploadsLeft().includes(old));
  });

  test("a service that cannot list uploads is reported, not a failure", async () => {
    const limited = Object.assign(Object.create(store) as S3Store, {
      // biome-ignore lint/correctness/useYield: it throws before yielding, as the store does for NotImplemented
      async *leftovers() {
        throw new LeftoversUnsupported("s3://b/etcd cannot list multipart uploads (NotImplemented)");
      },
    });
    const report = await pruneBackups(limited, { last: 10 }, { now });
    assert.match(report.uploadsUnchecked ?? "", /cannot list multipart uploads/);
    assert.deepEqual(report.failures, []);
  });
});
