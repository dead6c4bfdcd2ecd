/**
 * `rekey` killed with SIGKILL at seeded points (the test-only hook ETCD_BACKUP_TEST_REKEY_KILL_AT names the step,
 * src/backup/rekey.ts REKEY_STEPS), on a directory and on S3 (s3rver, an object above the 5 MiB part so the
 * part-copy path runs): after every kill the backup is listed complete, `verify` passes, and exactly the old
 * key (killed before the object was replaced) or the new key (after) restores it: never neither. The same
 * command run again finishes or undoes the interrupted rekey, and nothing is left behind.
 * Seeded; the seed is printed on failure; rerun one with ETCD_BACKUP_TEST_SEED=<seed>. The rounds are
 * test/fixtures/rekey-crash-rounds.ts (shared with the Object Lock run, test/e2e/rekey-object-lock.test.ts).
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { rekeyCrashRounds } from "../fixtures/rekey-crash-rounds.ts";
import { prepareRekey, type RekeySetup, rekeyS3Bucket } from "../fixtures/rekey-setup.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
describe(`rekey killed at seeded points (seed ${SEED})`, () => {
  let setup: RekeySetup;
  let s3: TestS3Server;

  before(async () => {
    // About 6.5 MB stored (--compress none): above one 5 MiB part on S3.
    setup = await prepareRekey("e2e-rekey-crash", 1600);
    s3 = await startS3Server();
    await s3.createBucket("backups");
  });
  after(async () => {
    await s3?.stop();
    if (setup) rmSync(setup.work, { recursive: true, force: true });
  });

  test("on a directory", async (t) => {
    const dir = join(setup.work, "dir");
    mkdirSync(dir);
    const leftovers = async () => readdirSync(dir).filter((f) => /\.rekey|etcd-backup-tmp/.test(f));
    await withSeed(SEED, () =>
      rekeyCrashRounds({
        ...setup,
        ...{ to: dir, env: {}, leftovers },
        ...{ rand: new SeededRandom(SEED), count: 7, diag: (l) => t.diagnostic(l) },
      }),
    );
  });

  test("on S3 (s3rver, part copy)", async (t) => {
    const bucket = rekeyS3Bucket(s3, "backups");
    try {
      await withSeed(SEED, () =>
        rekeyCrashRounds({
          ...setup,
          ...{ to: bucket.to, env: bucket.env, leftovers: bucket.leftovers },
          ...{ rand: new SeededRandom(SEED + 1), count: 4, diag: (l) => t.diagnostic(l) },
        }),
      );
    } finally {
      bucket.destroy();
    }
  });
});
