import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { S3Store } from "../../src/store/s3.ts";
import { keygen } from "../fixtures/cli.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { testSeed } from "../fixtures/seeded-random.ts";
import { pointInTimeScenario } from "../point-in-time/scenario.ts";

describe("point-in-time recovery on S3 (s3rver)", () => {
  let etcd: EtcdServer;
  let s3: TestS3Server;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-s3-"));
    etcd = await startEtcd();
    s3 = await startS3Server();
    await s3.createBucket("backups");
  });

  after(async () => {
    await etcd?.destroy();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("log to s3:// while a writer runs; restore --at and --revision equal etcd at that revision", async () => {
    const { identity, recipient } = await keygen(work);
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# point-in-time (S3) seed ${seed}\n`);
    await pointInTimeScenario({
      etcd,
      dest: "s3://backups/pitr",
      store: new S3Store({
        bucket: "backups",
        prefix: "pitr",
        settings: { endpoint: s3.endpoint },
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      }),
      env: {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL: s3.endpoint,
      },
      identity,
      recipient,
      work,
      seed,
      durationMs: Number(process.env.ETCD_BACKUP_PITR_S3_SECONDS ?? 30) * 1000,
      timePoints: 2,
      revisionPoints: 2,
    });
  });
});
