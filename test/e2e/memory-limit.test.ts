import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { memoryCgroupUnavailable, runInMemoryCgroup } from "../fixtures/memory-cgroup.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom } from "../fixtures/seeded-random.ts";

const MiB = 1024 * 1024;
/** The memory limit backup CronJobs commonly get (issue 22). */
const LIMIT = 128 * MiB;
const LAUNCHER = join(import.meta.dirname, "..", "..", "bin", "etcd-backup.js");
const SEED = Number(process.env.ETCD_BACKUP_TEST_SEED ?? 22);

/**
 * `save` as users run it (the npm launcher, default settings, no NODE_OPTIONS) inside a cgroup whose memory limit
 * is 128 MiB, from a real etcd holding ~150 MB of large values (ConfigMap-like text and Secret-like random
 * bytes of 20-60 KB, on bbolt overflow pages): to a directory and to S3, both with zstd + age. It must complete
 * without an OOM kill, and the backups must verify. A control run in the same kind of cgroup that allocates
 * 200 MiB is OOM-killed, so the limit is known to bite. Skipped, with the reason, where cgroups are not writable.
 */
describe("save within a 128 MiB memory limit (cgroup)", { skip: memoryCgroupUnavailable() }, () => {
  let etcd: EtcdServer;
  let s3: TestS3Server;
  let work: string;
  let identity: string;
  let recipient: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-memory-limit-"));
    etcd = await startEtcd({ args: ["--max-request-bytes", String(8 * MiB)], quotaBytes: 2048 * MiB });
    const random = new SeededRandom(SEED);
    const kv = new EtcdKv(etcd.endpoint);
    try {
      const text = Buffer.from("key: value-0123 # a config line of an application\n".repeat(1300));
      for (let round = 0; round < 10; round++) {
        const puts = [];
        for (let i = 0; i < 360; i++) {
          const n = round * 360 + i;
          const size = random.int(20_000, 60_000);
          const value =
            n % 2 === 0
              ? Buffer.from(random.bytes(Math.ceil((size * 3) / 4)).toString("base64"))
              : Buffer.concat([Buffer.from(`${n}:`), text.subarray(0, size)]);
          puts.push({ key: `/registry/${n % 2 ? "configmaps" : "secrets"}/ns-${n % 40}/obj-${n}`, value });
        }
        await kv.putAll(puts, { perTxn: 100, maxBytes: 6 * MiB });
      }
      // etcd grows its file when it commits its write batch (every 100 ms, later on a loaded machine): ask again.
      let dbSize = await kv.dbSize();
      for (let tries = 0; dbSize <= 140e6 && tries < 50; tries++) {
        await new Promise((r) => setTimeout(r, 200));
        dbSize = await kv.dbSize();
      }
      assert.ok(dbSize > 140e6, `the database (${dbSize} bytes) is big enough to show unbounded buffering`);
    } finally {
      kv.client.close();
    }
    s3 = await startS3Server();
    await s3.createBucket("backups");
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await s3?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const saveLimited = async (to: string[], env: NodeJS.ProcessEnv = {}) => {
    const { NODE_OPTIONS: _, ...clean } = process.env;
    const r = await runInMemoryCgroup(
      LIMIT,
      process.execPath,
      [LAUNCHER, "save", "--endpoints", etcd.endpoint, ...to, "--recipient", recipient, "-o", "json"],
      { env: { ...clean, ...env }, name: "etcd-backup-save-test" },
    );
    const peak = r.peakBytes === undefined ? "not kept" : `${(r.peakBytes / MiB).toFixed(0)} MiB`;
    process.stderr.write(
      `# cgroup ${r.kind}, limit 128 MiB: exit ${r.code}, OOM kills ${r.oomKills}, peak ${peak}\n`,
    );
    assert.equal(r.oomKills, 0, `save was OOM-killed in a 128 MiB cgroup (seed ${SEED}): ${r.stderr}`);
    assert.equal(r.code, 0, `save failed (signal ${r.signal}, seed ${SEED}): ${r.stderr}`);
    return JSON.parse(r.stdout) as { manifest: { sizes: { plain: number } } };
  };

  test("the limit bites: a process that needs 200 MiB is OOM-killed", async () => {
    const r = await runInMemoryCgroup(LIMIT, process.execPath, [
      "-e",
      "const b = Buffer.alloc(200 * 1024 * 1024, 1); console.log(b[b.length - 1]);",
    ]);
    assert.ok(r.oomKills >= 1 && r.code !== 0, `exit ${r.code}, ${r.oomKills} OOM kills: ${r.stderr}`);
  });

  test("save -> directory, zstd + age, completes and verifies", async () => {
    const dir = join(work, "dir");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const out = await saveLimited(["--to", dir]);
    assert.ok(out.manifest.sizes.plain > 140e6);
    assertOk(await runCli(["verify", "latest", "--to", dir, "-i", identity]));
  });

  test("save -> S3, zstd + age, completes and verifies", async () => {
    const env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-east-1",
    };
    const to = ["--to", "s3://backups/limited", "--s3-endpoint", s3.endpoint, "--s3-path-style"];
    const out = await saveLimited(to, env);
    assert.ok(out.manifest.sizes.plain > 140e6);
    assertOk(await runCli(["verify", "latest", ...to, "-i", identity], { env: { ...process.env, ...env } }));
  });
});
