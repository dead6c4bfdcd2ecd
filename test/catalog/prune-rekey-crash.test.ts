/**
 * `prune` after a real `rekey` killed with SIGKILL at seeded steps (the rounds of test/fixtures/rekey-crash-rounds.ts,
 * with prune in place of the rerun), on a directory, on S3 (s3rver; an object above the 5 MiB part, so the kill can
 * leave a part-copied rewritten object) and on a MinIO bucket with Object Lock (governance):
 * - within the grace period (the clock prune takes: a minute after the kill) prune, dry or real, touches nothing
 *   (every object's size, time and bytes compared) and shows the rekey "in progress" with its key and age;
 * - after it (the clock moved 25 h on; nothing sleeps) prune finishes the rekey where the object already carries
 *   the new header and undoes it otherwise, as its journal says, and nothing named `.rekey`/`.rekey-new.` is left;
 * - the backup then lists complete, `verify` passes, our `restore` and the real `age -d` 1.3.2 open it with the
 *   same key as right after the kill (old before the replace, new after) and not with the other; on the lock
 *   bucket the object and manifest stay locked;
 * - a backup that retention deletes is kept while its rekey may run, and after the grace period goes with its
 *   journal and copies.
 * Seeded; the seed is printed on failure; rerun one with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { REKEY_STEPS, type RekeyStep } from "../../src/backup/rekey.ts";
import { manifestKey } from "../../src/catalog/names.ts";
import { pruneBackups } from "../../src/catalog/prune.ts";
import type { RekeyResolution } from "../../src/catalog/prune-rekeys.ts";
import { LocalStore } from "../../src/store/local.ts";
import type { Store } from "../../src/store/store.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { minioPeer, REPO_ROOT, skipReason } from "../fixtures/peers.ts";
import { rekeyCrashRounds } from "../fixtures/rekey-crash-rounds.ts";
import { prepareRekey, type RekeySetup, rekeyS3Bucket } from "../fixtures/rekey-setup.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
const AGE = join(REPO_ROOT, ".peers", "age-1.3.2", "bin", "age");
const HOUR = 3_600_000;
const exec = promisify(execFile);

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

/** What prune does with what a kill after `step` leaves (the object is replaced from step `replaced` on). */
function expectedResolution(step: RekeyStep): RekeyResolution | undefined {
  switch (step) {
    case "staged":
    case "verified":
      return "clean";
    case "journal":
      return "undo";
    case "replaced":
    case "manifest":
      return "finish";
    default:
      return undefined; // header, done: nothing left
  }
}

/** Every object with its size, time and content hash: "nothing was touched" compares two of these. */
async function contents(store: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const o of store.list("")) {
    out[o.key] = `${o.size} ${o.lastModified.toISOString()} ${sha256(await buffer(await store.get(o.key)))}`;
  }
  return out;
}

describe(`prune after a rekey killed at seeded points (seed ${SEED})`, {
  skip: existsSync(AGE) ? false : "age 1.3.2 not built in .peers",
}, () => {
  let setup: RekeySetup;
  let snapshotSha: string;
  let s3: TestS3Server;

  before(async () => {
    // About 6.5 MB stored (--compress none): above one 5 MiB part on S3, so rekey copies parts server-side.
    setup = await prepareRekey("prune-rekey-crash", 1600);
    snapshotSha = sha256(readFileSync(setup.snapshot));
    s3 = await startS3Server();
    await s3.createBucket("backups");
  });
  after(async () => {
    await s3?.stop();
    if (setup) rmSync(setup.work, { recursive: true, force: true });
  });

  /** Whether the real `age -d` opens the backup's object with `identity` (--compress none: the snapshot itself). */
  async function ageOpens(store: Store, name: string, identity: string): Promise<boolean> {
    const file = join(setup.work, "object.age");
    writeFileSync(file, await buffer(await store.get(name)));
    try {
      const out = await exec(AGE, ["-d", "-i", identity, file], { encoding: "buffer", maxBuffer: 1 << 28 });
      assert.equal(sha256(out.stdout as Buffer), snapshotSha, "age -d gave other bytes");
      return true;
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      return false;
    } finally {
      rmSync(file, { force: true });
    }
  }

  /**
   * The prune that replaces the rerun in the crash rounds: within the grace period (dry run by the CLI, then a
   * real run) nothing changes; after it, the resolution the kill's step calls for, and `age -d` agrees.
   */
  function pruneInstead(store: Store, to: string, env: NodeJS.ProcessEnv) {
    return async (r: { name: string; step: RekeyStep; expectNew: boolean; left: string[] }) => {
      const expected = r.left.length > 0 ? expectedResolution(r.step) : undefined;
      const before = await contents(store);
      // list shows what a rekey left beside the backup (running or killed: list cannot tell).
      const listed = await runCli(["list", "--to", to, "-o", "json"], { env });
      assertOk(listed);
      const entry = (
        JSON.parse(listed.stdout) as { name: string; rekey?: { journal: string | null; staging: string[] } }[]
      ).find((e) => e.name === r.name);
      assert.deepEqual(
        entry?.rekey ? [entry.rekey.journal, ...entry.rekey.staging].filter((k) => k !== null).sort() : [],
        [...r.left].map((k) => k.replace(/^.*\//, "")).sort(),
        `list -o json after a kill at ${r.step}`,
      );
      const table = await runCli(["list", "--to", to], { env });
      assertOk(table);
      const listRow = table.stdout.split("\n").find((l) => l.startsWith(`${r.name} `)) ?? "";
      if (expected) assert.match(listRow, /in progress or interrupted \(/, `list:\n${table.stdout}`);
      else assert.doesNotMatch(listRow, /in progress or interrupted/);
      const dry = await runCli(["prune", "--to", to, "--keep-last", "1", "--dry-run"], { env });
      assertOk(dry);
      const row = dry.stdout.split("\n").find((l) => l.includes(r.name) && l.includes("REKEY"));
      if (expected) {
        assert.ok(row, `dry run shows no rekey row for ${r.name}:\n${dry.stdout}`);
        assert.match(row, /^keep\s.*rekey in progress/, `within the grace period:\n${dry.stdout}`);
        assert.match(row, /\s\d+s\s/, "its age");
      } else
        assert.equal(row, undefined, `a rekey row after a kill at ${r.step} left nothing:\n${dry.stdout}`);
      const within = await pruneBackups(store, { last: 1 }, { now: new Date(Date.now() + 60_000) });
      assert.deepEqual(within.failures, []);
      assert.deepEqual(await contents(store), before, `prune within the grace period touched something`);
      const mine = within.rekeys.filter((c) => c.key === r.name);
      assert.deepEqual(
        mine.map((c) => [c.action, c.resolution]),
        expected ? [["keep", "in progress"]] : [],
      );

      // The CLI's dry run with no grace period says what the real run after it does.
      const dryLater = await runCli(
        ["prune", "--to", to, "--keep-last", "1", "--dry-run", "--incomplete-grace", "0s"],
        { env },
      );
      assertOk(dryLater);
      const laterRow = dryLater.stdout.split("\n").find((l) => l.includes(r.name) && l.includes("REKEY"));
      if (expected) {
        const verb = { finish: "would finish rekey", undo: "would undo rekey", clean: "would delete" }[
          expected as string
        ];
        assert.ok(laterRow?.startsWith(`${verb} `), `dry run after the grace period:\n${dryLater.stdout}`);
      }
      assert.deepEqual(await contents(store), before, "the CLI's dry run touched something");
      const later = new Date(Date.now() + 25 * HOUR);
      const plan = await pruneBackups(store, { last: 1 }, { now: later, dryRun: true });
      assert.deepEqual(await contents(store), before, "the dry run after the grace period touched something");
      const done = await pruneBackups(store, { last: 1 }, { now: later });
      assert.deepEqual(done.failures, []);
      const resolved = done.rekeys.filter((c) => c.key === r.name);
      assert.deepEqual(
        plan.rekeys.filter((c) => c.key === r.name).map((c) => c.resolution),
        resolved.map((c) => c.resolution),
        "the dry run planned otherwise",
      );
      assert.deepEqual(
        resolved.map((c) => [c.resolution, c.result]),
        expected
          ? [[expected, { finish: "finished", undo: "undone", clean: "removed" }[expected as string]]]
          : [],
      );
      assert.equal(done.backups.find((x) => x.entry.key === r.name)?.action, "keep");
      const [withA, withB] = [
        await ageOpens(store, r.name, setup.a.identity),
        await ageOpens(store, r.name, setup.b.identity),
      ];
      assert.deepEqual(
        [withA, withB],
        r.expectNew ? [false, true] : [true, false],
        "which key age -d opens it with",
      );
      return `prune: ${expected ?? "nothing to do"}; age -d opens it with the ${r.expectNew ? "new" : "old"} key`;
    };
  }

  /** A cluster with two backups; the older one's rekey killed at a seeded step; prune with --keep-last 1. */
  async function deletedWithItsBackup(
    store: Store,
    to: string,
    env: NodeJS.ProcessEnv,
    rand: SeededRandom,
    leftovers: () => Promise<string[]>,
  ): Promise<string> {
    const step = rand.pick(REKEY_STEPS.filter((s) => expectedResolution(s) !== undefined));
    const older = await setup.saveToOldKey(to, "retired", { env });
    await delay(1100); // names carry whole seconds
    const newer = await setup.saveToOldKey(to, "retired", { env });
    const killed = await runCli(setup.rekeyArgs(older, to), {
      env: { ...env, ETCD_BACKUP_TEST_REKEY_KILL_AT: step },
    });
    assert.equal(killed.code, null, `the rekey was to be killed at ${step}`);
    assert.ok((await leftovers()).length > 0, `a kill at ${step} left nothing`);

    const before = await contents(store);
    const within = await pruneBackups(store, { last: 1 }, { now: new Date(Date.now() + 60_000) });
    assert.deepEqual(await contents(store), before, `within the grace period (killed at ${step})`);
    const kept = within.backups.find((x) => x.entry.key === older);
    assert.deepEqual([kept?.action, kept?.reasons[0]?.rule], ["keep", "rekey"]);

    const done = await pruneBackups(store, { last: 1 }, { now: new Date(Date.now() + 25 * HOUR) });
    assert.deepEqual(done.failures, []);
    assert.equal(done.backups.find((x) => x.entry.key === older)?.result, "deleted");
    assert.deepEqual(
      done.rekeys.filter((c) => c.key === older).map((c) => [c.resolution, c.result]),
      [["with backup", "deleted"]],
    );
    assert.deepEqual(await leftovers(), [], `killed at ${step}: left after the backup was deleted`);
    assert.equal(await store.stat(older), null);
    assert.equal(await store.stat(manifestKey(older)), null);
    const out = join(setup.work, "newer.db");
    assertOk(await runCli(["restore", newer, "--to", to, "-i", setup.a.identity, "--to-file", out], { env }));
    assert.equal(sha256(readFileSync(out)), snapshotSha);
    rmSync(out);
    return `older backup's rekey killed at ${step}: kept within the grace period, deleted with its leftovers after`;
  }

  test("on a directory", async (t) => {
    const dir = join(setup.work, "dir");
    mkdirSync(dir);
    const store = new LocalStore(dir);
    const leftovers = async () => readdirSync(dir).filter((f) => /\.rekey|etcd-backup-tmp/.test(f));
    await withSeed(SEED, async () => {
      await rekeyCrashRounds({
        ...setup,
        ...{ to: dir, env: {}, leftovers },
        ...{ rand: new SeededRandom(SEED), count: 7, diag: (l) => t.diagnostic(l) },
        resolve: pruneInstead(store, dir, {}),
      });
      t.diagnostic(await deletedWithItsBackup(store, dir, {}, new SeededRandom(SEED + 10), leftovers));
    });
  });

  test("on S3 (s3rver, part copy)", async (t) => {
    const { to, env, store, leftovers, destroy } = rekeyS3Bucket(s3, "backups");
    try {
      await withSeed(SEED, async () => {
        await rekeyCrashRounds({
          ...setup,
          ...{ to, env, leftovers },
          ...{ rand: new SeededRandom(SEED + 1), count: 5, diag: (l) => t.diagnostic(l) },
          resolve: pruneInstead(store, to, env),
        });
        t.diagnostic(await deletedWithItsBackup(store, to, env, new SeededRandom(SEED + 11), leftovers));
      });
    } finally {
      destroy();
    }
  });

  test("on MinIO with Object Lock (governance): resolved, and the backup stays locked", {
    skip: skipReason(minioPeer(), "MinIO"),
  }, async (t) => {
    const minio: TestMinioServer = await startMinio();
    // Any version or delete marker of a journal or copy counts: nothing of a rekey may stay behind.
    const { to, env, store, leftovers, destroy } = rekeyS3Bucket(minio, "locked", { versions: true });
    try {
      await minio.createBucket("locked", { objectLock: true });
      await withSeed(SEED, () =>
        rekeyCrashRounds({
          ...setup,
          ...{ to, env, leftovers },
          ...{ rand: new SeededRandom(SEED + 2), count: 5, diag: (l) => t.diagnostic(l) },
          saveArgs: ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
          resolve: pruneInstead(store, to, env),
          afterRound: async (name, step) => {
            assert.equal((await store.retention(name)).mode, "governance", `after a kill at ${step}: object`);
            assert.equal(
              (await store.retention(manifestKey(name))).mode,
              "governance",
              `after a kill at ${step}: manifest`,
            );
          },
        }),
      );
    } finally {
      destroy();
      await minio.stop();
    }
  });
});
