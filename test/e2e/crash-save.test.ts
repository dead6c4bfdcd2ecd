/**
 * A `save` killed with SIGKILL at seeded points, end to end with the built CLI, to a directory and to S3 (s3rver):
 * nothing is listed complete that is not, no complete backup is lost, the next save succeeds, and `prune` cleans
 * what the killed runs left (pending markers, temporary files, multipart uploads) once past the grace period.
 *
 * The kill point is the number of stored bytes after which the process kills itself, through the test-only hook
 * ETCD_BACKUP_TEST_KILL_AFTER_BYTES (src/backup/publish.ts). Seeded; the seed is printed on failure; rerun one with
 * ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";
import { snapshotFileSaves } from "../fixtures/snapshot-file-saves.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
const MiB = 1024 * 1024;
const PART_MIB = 5;

describe(`save killed at seeded points (seed ${SEED})`, () => {
  let work: string;
  let snapshot: string;
  let size: number;
  let identity: string;
  let recipient: string;
  let s3: TestS3Server;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-crash-"));
    ({ identity, recipient } = await keygen(work));
    const etcd = await startEtcd();
    try {
      // About 9 MB: more than one 5 MiB part, so a kill can fall inside a multipart upload.
      await fillKeys(etcd, 2200, { prefix: "/registry/configmaps/default/big-", valueSize: 4000 });
      snapshot = join(work, "snapshot.db");
      await etcd.ctl(["snapshot", "save", snapshot]);
    } finally {
      await etcd.destroy();
    }
    size = statSync(snapshot).size;
    assert.ok(size > 7 * MiB, `snapshot is only ${size} bytes`);
    s3 = await startS3Server();
    await s3.createBucket("backups");
  });
  after(async () => {
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** What is left of killed runs: markers, temporary files, multipart uploads. */
  type Leftovers = () => { markers: string[]; temporary: string[]; uploads: string[] };

  async function crashAndRecover(
    to: string,
    env: NodeJS.ProcessEnv,
    leftovers: Leftovers,
    seed: number,
    report: (line: string) => void,
  ): Promise<void> {
    const random = new SeededRandom(seed);
    const { save, killedAfter, list } = snapshotFileSaves({ snapshot, to, recipient, env });
    const complete: string[] = [];
    const first = await save();
    assertOk(first);
    complete.push((JSON.parse(first.stdout) as { key: string }).key);

    // One kill before a whole part is stored, one well inside the multipart upload, one anywhere.
    const points = [
      Math.floor(random.next() * PART_MIB * MiB),
      Math.floor((PART_MIB + 2) * MiB + random.next() * (size - (PART_MIB + 2) * MiB)),
      Math.floor(random.next() * size),
    ];
    for (const point of points) {
      await killedAfter(point);
      const entries = await list();
      assert.deepEqual(
        entries
          .filter((e) => e.state === "complete")
          .map((e) => e.name)
          .sort(),
        [...complete].sort(),
        `after a kill at ${point} bytes the complete backups changed`,
      );
      assert.deepEqual(
        entries.filter((e) => e.state !== "complete" && e.state !== "incomplete"),
        [],
        "a killed save left something that is neither complete nor marked incomplete",
      );
      const rerun = await save();
      assertOk(rerun);
      complete.push((JSON.parse(rerun.stdout) as { key: string }).key);
      const left = leftovers();
      report(
        `killed after ${point} of ${size} bytes: ${left.markers.length} marker(s), ${left.temporary.length} temporary file(s), ${left.uploads.length} multipart upload(s) left`,
      );
    }
    const before = leftovers();
    assert.ok(before.markers.length >= 1, "the killed runs left no marker: were they killed at all?");

    // Leftovers younger than the grace period stay: an upload may still run.
    const young = await runCli(["prune", "--to", to, "--keep-last", "100", "-o", "json"], { env });
    assertOk(young);
    assert.deepEqual(leftovers(), before, "prune removed leftovers younger than the grace period");

    await sleep(1100);
    const pruned = await runCli(["prune", "--to", to, "--keep-last", "100", "--incomplete-grace", "1s"], {
      env,
    });
    assertOk(pruned);
    assert.deepEqual(leftovers(), { markers: [], temporary: [], uploads: [] }, pruned.stdout);
    const entries = await list();
    assert.deepEqual(
      entries.map((e) => `${e.state} ${e.name}`).sort(),
      complete.map((k) => `complete ${k}`).sort(),
      "after prune the store should hold exactly the completed backups",
    );
    for (const key of complete) {
      const verify = await runCli(["verify", key, "--to", to, "-i", identity], { env });
      assert.equal(verify.code, 0, `${key} does not verify:\n${verify.stdout}${verify.stderr}`);
    }
  }

  test("to a directory", async (t) => {
    const dir = join(work, "dir");
    mkdirSync(dir);
    const walk = (rel = ""): string[] =>
      readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(rel, e.name)) : [join(rel, e.name)],
      );
    const leftovers = () => ({
      markers: walk().filter((f) => f.endsWith(".pending")),
      temporary: walk().filter((f) => f.includes(".etcd-backup-tmp-")),
      uploads: [],
    });
    await withSeed(SEED, () => crashAndRecover(dir, {}, leftovers, SEED, (l) => t.diagnostic(l)));
  });

  test("to S3", async (t) => {
    const env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_EC2_METADATA_DISABLED: "true",
      ETCD_BACKUP_S3_PART_SIZE: String(PART_MIB),
    };
    const bucket = join(s3.directory, "backups");
    const walk = (rel = ""): string[] =>
      readdirSync(join(bucket, rel), { withFileTypes: true }).flatMap((e) =>
        e.name.startsWith("._S3rver") ? [] : e.isDirectory() ? walk(join(rel, e.name)) : [join(rel, e.name)],
      );
    const uploadsDir = join(bucket, "._S3rver_uploads");
    const leftovers = () => ({
      markers: walk().filter((f) => f.endsWith(".pending._S3rver_object")),
      temporary: [],
      uploads: existsSync(uploadsDir) ? readdirSync(uploadsDir) : [],
    });
    await withSeed(SEED + 1, () =>
      crashAndRecover("s3://backups/etcd", env, leftovers, SEED + 1, (l) => t.diagnostic(l)),
    );
  });
});
