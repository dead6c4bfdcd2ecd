/**
 * `rekey` killed with SIGKILL at seeded points (the test-only hook ETCD_BACKUP_TEST_REKEY_KILL_AT names the step,
 * src/backup/rekey.ts REKEY_STEPS), on a directory and on S3 (s3rver, an object above the 5 MiB part so the
 * part-copy path runs): after every kill the backup is listed complete, `verify` passes, and exactly the old
 * key (killed before the object was replaced) or the new key (after) restores it: never neither. The same
 * command run again finishes or undoes the interrupted rekey, and nothing is left behind.
 * Seeded; the seed is printed on failure; rerun one with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REKEY_STEPS } from "../../src/backup/rekey.ts";
import { S3Store } from "../../src/store/s3.ts";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
/** Steps before which the object is still the old one: the old key must open it. */
const OLD_UNTIL = REKEY_STEPS.indexOf("replaced");

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

describe(`rekey killed at seeded points (seed ${SEED})`, () => {
  let work: string;
  let snapshot: string;
  let a: { identity: string; recipient: string };
  let b: { identity: string; recipient: string };
  let s3: TestS3Server;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-rekey-crash-"));
    mkdirSync(join(work, "a"));
    mkdirSync(join(work, "b"));
    a = await keygen(join(work, "a"));
    b = await keygen(join(work, "b"));
    const etcd = await startEtcd();
    try {
      // About 6.5 MB stored (--compress none): above one 5 MiB part on S3.
      await fillKeys(etcd, 1600, { prefix: "/registry/configmaps/default/big-", valueSize: 4000 });
      snapshot = join(work, "snapshot.db");
      await etcd.ctl(["snapshot", "save", snapshot]);
    } finally {
      await etcd.destroy();
    }
    s3 = await startS3Server();
    await s3.createBucket("backups");
  });
  after(async () => {
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function rounds(
    to: string,
    env: NodeJS.ProcessEnv,
    leftovers: () => Promise<string[]>,
    rand: SeededRandom,
    count: number,
    diag: (line: string) => void,
  ): Promise<void> {
    const snapshotSha = sha256(readFileSync(snapshot));
    // Every step once at least when count allows, the rest at random.
    const steps = [...REKEY_STEPS].sort(() => rand.next() - 0.5).slice(0, count);
    while (steps.length < count) steps.push(rand.pick(REKEY_STEPS));
    for (const [i, step] of steps.entries()) {
      const saved = await runCli(
        [
          ...["save", "--from-file", snapshot, "--to", to, "--cluster", `c${i}`],
          ...["--compress", "none", "--recipient", a.recipient, "-o", "json"],
        ],
        { env },
      );
      assertOk(saved);
      const name = (JSON.parse(saved.stdout) as { key: string }).key;
      const rekey = (extra: NodeJS.ProcessEnv = {}) =>
        runCli(
          [
            ...["rekey", name, "--to", to, "--identity", a.identity],
            ...["--recipient", b.recipient, "--remove-recipient", a.recipient],
          ],
          { env: { ...env, ...extra } },
        );
      const opens = async (who: { identity: string }, tag: string) => {
        const out = join(work, `r-${i}-${tag}.db`);
        const r = await runCli(["restore", name, "--to", to, "-i", who.identity, "--to-file", out], { env });
        if (r.code !== 0) return false;
        assert.equal(sha256(readFileSync(out)), snapshotSha, `${tag} restored other bytes`);
        rmSync(out);
        return true;
      };
      const check = async (expectNew: boolean, when: string) => {
        const list = await runCli(["list", "--to", to, "-o", "json"], { env });
        assertOk(list);
        const entry = (JSON.parse(list.stdout) as { name: string; state: string; problem?: string }[]).find(
          (e) => e.name === name,
        );
        assert.equal(entry?.state, "complete", `${when}: listed ${JSON.stringify(entry)}`);
        const [withA, withB] = [await opens(a, "a"), await opens(b, "b")];
        assert.ok(withA || withB, `${when}: neither key opens the backup`);
        assert.deepEqual(
          [withA, withB],
          expectNew ? [false, true] : [true, false],
          `${when}: which key opens it`,
        );
        const verify = await runCli(["verify", name, "--to", to, "-i", (expectNew ? b : a).identity], {
          env,
        });
        assert.equal(verify.code, 0, `${when}: verify failed\n${verify.stdout}${verify.stderr}`);
      };

      const killed = await rekey({ ETCD_BACKUP_TEST_REKEY_KILL_AT: step });
      assert.equal(
        killed.code,
        null,
        `the rekey was to be killed at ${step}: ${killed.stdout}${killed.stderr}`,
      );
      const expectNew = REKEY_STEPS.indexOf(step) >= OLD_UNTIL;
      await check(expectNew, `killed at ${step}`);
      const left = await leftovers();

      const rerun = await rekey();
      assertOk(rerun);
      await check(true, `rerun after a kill at ${step}`);
      assert.deepEqual(await leftovers(), [], `rerun after a kill at ${step} left files`);
      diag(
        `killed at ${step}: ${expectNew ? "new" : "old"} key opened it; left ${left.length} file(s); rerun: ${rerun.stdout.trim()}`,
      );
    }
  }

  async function withSeed(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof Error)
        err.message = `seed ${SEED} (rerun with ETCD_BACKUP_TEST_SEED=${SEED}): ${err.message}`;
      throw err;
    }
  }

  test("on a directory", async (t) => {
    const dir = join(work, "dir");
    mkdirSync(dir);
    const leftovers = async () => readdirSync(dir).filter((f) => /\.rekey|etcd-backup-tmp/.test(f));
    await withSeed(() => rounds(dir, {}, leftovers, new SeededRandom(SEED), 7, (l) => t.diagnostic(l)));
  });

  test("on S3 (s3rver, part copy)", async (t) => {
    const env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_EC2_METADATA_DISABLED: "true",
      ETCD_BACKUP_S3_PART_SIZE: "5",
    };
    const store = new S3Store({
      bucket: "backups",
      settings: { endpoint: s3.endpoint, retryBaseDelayMs: 5 },
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const leftovers = async () => {
      const keys: string[] = [];
      for await (const o of store.list("")) if (o.key.includes(".rekey")) keys.push(o.key);
      return keys;
    };
    try {
      await withSeed(() =>
        rounds("s3://backups", env, leftovers, new SeededRandom(SEED + 1), 4, (l) => t.diagnostic(l)),
      );
    } finally {
      store.destroy();
    }
  });
});
