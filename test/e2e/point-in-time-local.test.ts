import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LocalStore } from "../../src/store/local.ts";
import { keygen } from "../fixtures/cli.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { testSeed } from "../fixtures/seeded-random.ts";
import { pointInTimeScenario } from "../point-in-time/scenario.ts";

describe("point-in-time recovery on a directory store", () => {
  let etcd: EtcdServer;
  let work: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-"));
    etcd = await startEtcd();
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  test("log for a minute of mixed writes; restore --at and --revision equal etcd at that revision, field for field", async () => {
    const { identity, recipient } = await keygen(work);
    const dest = join(work, "store");
    mkdirSync(dest);
    const seed = testSeed(Date.now() % 1_000_000);
    process.stdout.write(`# point-in-time (directory) seed ${seed}\n`);
    await pointInTimeScenario({
      etcd,
      dest,
      store: new LocalStore(dest),
      env: {},
      identity,
      recipient,
      work,
      seed,
      durationMs: Number(process.env.ETCD_BACKUP_PITR_SECONDS ?? 60) * 1000,
      timePoints: 4,
      revisionPoints: 3,
    });
  });
});
