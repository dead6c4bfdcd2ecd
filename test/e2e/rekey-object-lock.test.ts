/**
 * `rekey` of backups saved under S3 Object Lock, on the real MinIO with a lock-enabled bucket (s3rver has no
 * Object Lock), with an object above the 5 MiB part so the part-copy path runs:
 * - governance, compliance (`--s3-object-lock-days 1`) and a legal hold alone: the rekey succeeds; the new current
 *   versions of the backup object and of its manifest carry the old mode, a retain-until date no earlier than
 *   the old one, and the legal hold; no staging object nor journal is left (no version of them either: they
 *   were never locked); the old version stays, still locked, readable by the old key only, and rekey says so
 *   once; `list` shows the backup once, with its lock; `verify`, our `restore` and the real `age -d` open it with
 *   the new key and not with the old one.
 * - killed at seeded points on that bucket (the rounds of test/e2e/rekey-crash.test.ts): old or new readable,
 *   the rerun finishes, and the lock is on the final versions.
 * Seeded; the seed is printed on failure; rerun one with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { manifestKey } from "../../src/catalog/names.ts";
import type { S3Store } from "../../src/store/s3.ts";
import type { Retention } from "../../src/store/store.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { minioPeer, REPO_ROOT, skipReason } from "../fixtures/peers.ts";
import { rekeyCrashRounds } from "../fixtures/rekey-crash-rounds.ts";
import { prepareRekey, type RekeyS3Bucket, type RekeySetup, rekeyS3Bucket } from "../fixtures/rekey-setup.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
const AGE = join(REPO_ROOT, ".peers", "age-1.3.2", "bin", "age");
const BUCKET = "locked";
const exec = promisify(execFile);

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

describe(`rekey under S3 Object Lock on MinIO (seed ${SEED})`, {
  skip: skipReason(minioPeer(), "MinIO") || (existsSync(AGE) ? false : "age 1.3.2 not built in .peers"),
}, () => {
  let setup: RekeySetup;
  let minio: TestMinioServer;
  let env: NodeJS.ProcessEnv;
  let store: S3Store;
  let s3: S3Client;
  let bucket: RekeyS3Bucket;

  before(async () => {
    // About 6.5 MB stored (--compress none): above one 5 MiB part, so rekey copies parts server-side.
    setup = await prepareRekey("e2e-rekey-lock", 1600);
    minio = await startMinio();
    await minio.createBucket(BUCKET, { objectLock: true });
    bucket = rekeyS3Bucket(minio, BUCKET, { versions: true });
    ({ env, store, client: s3 } = bucket);
  });
  after(async () => {
    bucket?.destroy();
    await minio?.stop();
    if (setup) rmSync(setup.work, { recursive: true, force: true });
  });

  /** Every version of `key` (data only), newest first. */
  const versionsOf = async (key: string) => {
    const out = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }));
    assert.equal(out.IsTruncated ?? false, false);
    return (out.Versions ?? [])
      .filter((v) => v.Key === key)
      .sort((x, y) => Number(y.IsLatest) - Number(x.IsLatest));
  };
  const assertKeeps = (now: Retention, old: Retention, what: string) => {
    assert.equal(now.mode, old.mode, `${what}: mode`);
    assert.equal(now.legalHold, old.legalHold, `${what}: legal hold`);
    if (old.retainUntil) {
      assert.ok(now.retainUntil, `${what}: no retain-until date`);
      assert.ok(now.retainUntil.getTime() >= old.retainUntil.getTime(), `${what}: date moved earlier`);
    }
  };
  const ageDecrypts = async (identity: string, file: string) => {
    try {
      const out = await exec(AGE, ["-d", "-i", identity, file], { encoding: "buffer", maxBuffer: 1 << 28 });
      return out.stdout as Buffer;
    } catch {
      return null;
    }
  };

  const cases: { label: string; flags: string[]; expect: Retention }[] = [
    {
      label: "governance",
      flags: ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      expect: { mode: "governance", legalHold: false },
    },
    {
      label: "compliance",
      flags: ["--s3-object-lock", "compliance", "--s3-object-lock-days", "1"],
      expect: { mode: "compliance", legalHold: false },
    },
    { label: "legal hold", flags: ["--s3-legal-hold"], expect: { legalHold: true } },
  ];
  for (const [i, c] of cases.entries()) {
    test(`${c.label}: the rekeyed backup stays locked, the old version stays readable by the old key only`, async () => {
      const { work, snapshot, a, b } = setup;
      const name = await setup.saveToOldKey(`s3://${BUCKET}`, `lock${i}`, { env, extra: c.flags });
      const oldObject = await store.retention(name);
      const oldManifest = await store.retention(manifestKey(name));
      assert.equal(oldObject.mode, c.expect.mode);
      assert.equal(oldObject.legalHold, c.expect.legalHold);
      const [oldVersion] = await versionsOf(name);
      assert.ok(oldVersion?.VersionId);

      const rekey = await runCli(setup.rekeyArgs(name, `s3://${BUCKET}`), { env });
      assertOk(rekey);
      const said = `${rekey.stdout}${rekey.stderr}`;
      assert.equal(said.match(/previous version/g)?.length, 1, `rekey said:\n${said}`);
      assert.match(said, /readable by the old key/);
      if (c.expect.mode) assert.match(said, new RegExp(`${c.expect.mode} until`));
      else assert.match(said, /until the legal hold is lifted/);
      assert.doesNotMatch(said, /fail|error/i);

      // The new current versions carry the old lock.
      assertKeeps(await store.retention(name), oldObject, "object");
      assertKeeps(await store.retention(manifestKey(name)), oldManifest, "manifest");
      assert.deepEqual(await bucket.leftovers(), [], "staging object or journal left");

      // The old version stays, locked, and opens with the old key only.
      const versions = await versionsOf(name);
      assert.equal(versions.length, 2, "one old and one new version");
      const old = versions.find((v) => v.VersionId === oldVersion.VersionId);
      assert.ok(old && !old.IsLatest, "the old version is kept, not current");
      const oldHead = await s3.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: name, VersionId: oldVersion.VersionId }),
      );
      assert.equal(oldHead.ObjectLockMode?.toLowerCase(), c.expect.mode);
      assert.equal(oldHead.ObjectLockLegalHoldStatus === "ON", c.expect.legalHold);
      const fetch = async (VersionId?: string) => {
        const out = await s3.send(
          new GetObjectCommand({ Bucket: BUCKET, Key: name, ...(VersionId ? { VersionId } : {}) }),
        );
        const file = join(work, `v-${i}-${VersionId ?? "current"}.age`);
        writeFileSync(file, await out.Body!.transformToByteArray());
        return file;
      };
      const oldFile = await fetch(oldVersion.VersionId);
      const currentFile = await fetch();
      const snapshotSha = sha256(readFileSync(snapshot));
      const oldPlain = await ageDecrypts(a.identity, oldFile);
      assert.ok(oldPlain, "the old key no longer opens the old version");
      assert.equal(sha256(oldPlain), snapshotSha);
      assert.equal(await ageDecrypts(b.identity, oldFile), null, "the new key opens the old version");
      // The real age CLI on the current version: the new key opens it, the old one does not.
      const newPlain = await ageDecrypts(b.identity, currentFile);
      assert.ok(newPlain, "age -d with the new key failed");
      assert.equal(sha256(newPlain), snapshotSha);
      assert.equal(await ageDecrypts(a.identity, currentFile), null, "age -d with the old key worked");

      // list: once, with its lock; verify with the new key; our restore with the new key, not the old.
      const list = await runCli(["list", "--to", `s3://${BUCKET}`, "-o", "json"], { env });
      assertOk(list);
      const entries = (
        JSON.parse(list.stdout) as {
          name: string;
          state: string;
          lock?: { mode: string | null; legalHold: boolean };
        }[]
      ).filter((e) => e.name === name);
      assert.equal(entries.length, 1, `listed ${entries.length} times`);
      assert.equal(entries[0]?.state, "complete");
      assert.equal(entries[0]?.lock?.mode ?? undefined, c.expect.mode);
      assert.equal(entries[0]?.lock?.legalHold, c.expect.legalHold);
      const verify = await runCli(["verify", name, "--to", `s3://${BUCKET}`, "-i", b.identity], { env });
      assert.equal(verify.code, 0, `${verify.stdout}${verify.stderr}`);
      assert.match(verify.stdout, /lock: /);
      const restored = join(work, `restored-${i}.db`);
      const withB = await runCli(
        ["restore", name, "--to", `s3://${BUCKET}`, "-i", b.identity, "--to-file", restored],
        { env },
      );
      assertOk(withB);
      assert.equal(sha256(readFileSync(restored)), snapshotSha);
      const withA = await runCli(
        ["restore", name, "--to", `s3://${BUCKET}`, "-i", a.identity, "--to-file", `${restored}.a`],
        { env },
      );
      assert.notEqual(withA.code, 0, "the old key restored the rekeyed backup");
    });
  }

  test("killed at seeded points on the lock bucket: old or new readable, the lock kept", async (t) => {
    const locks = new Map<string, { object: Retention; manifest: Retention }>();
    await withSeed(SEED, () =>
      rekeyCrashRounds({
        ...setup,
        ...{ to: bucket.to, env, leftovers: bucket.leftovers },
        ...{ rand: new SeededRandom(SEED + 2), count: 7, diag: (l) => t.diagnostic(l) },
        saveArgs: ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
        afterRound: async (name, step) => {
          const object = await store.retention(name);
          const manifest = await store.retention(manifestKey(name));
          assert.equal(object.mode, "governance", `after a kill at ${step}: object lock`);
          assert.equal(manifest.mode, "governance", `after a kill at ${step}: manifest lock`);
          locks.set(name, { object, manifest });
        },
      }),
    );
    assert.ok(locks.size > 0);
  });
});
