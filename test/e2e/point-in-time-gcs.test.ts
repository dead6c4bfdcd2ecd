import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GcsStore } from "../../src/store/gcs.ts";
import { keygen } from "../fixtures/cli.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { testSeed } from "../fixtures/seeded-random.ts";
import { pointInTimeScenario } from "../point-in-time/scenario.ts";

/** test/e2e/point-in-time-s3.test.ts with the revision log's segments in Google Cloud Storage (fake-gcs-server). */
describe("point-in-time recovery on Google Cloud Storage (fake-gcs-server)", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let etcd: EtcdServer;
  let gcs: TestGcsServer;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-gcs-"));
    etcd = await startEtcd();
    gcs = await startGcsServer();
    await gcs.createBucket("backups");
  });

  after(async () => {
    await etcd?.destroy();
    await gcs?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("log to gs:// while a writer runs; restore --at and --revision equal etcd at that revision", async () => {
    const { identity, recipient } = await keygen(work);
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# point-in-time (GCS) seed ${seed}\n`);
    await pointInTimeScenario({
      etcd,
      dest: "gs://backups/pitr",
      store: new GcsStore({ bucket: "backups", prefix: "pitr", settings: { endpoint: gcs.endpoint } }),
      env: {
        ETCD_BACKUP_GCS_ENDPOINT: gcs.endpoint,
        GOOGLE_APPLICATION_CREDENTIALS: "",
        STORAGE_EMULATOR_HOST: "",
      },
      identity,
      recipient,
      work,
      seed,
      durationMs: Number(process.env.ETCD_BACKUP_PITR_GCS_SECONDS ?? 20) * 1000,
      timePoints: 2,
      revisionPoints: 2,
    });
  });
});
