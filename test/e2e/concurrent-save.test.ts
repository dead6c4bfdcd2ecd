/**
 * Concurrent saves of one cluster, end to end with the built CLI: N `save --from-file` processes started within the
 * same second against one destination (a directory; s3rver as it is, which ignores conditional writes; s3rver with
 * the stand-in that honours them as AWS S3 does). Every run that exits 0 must have its own backup, which verifies
 * and holds the snapshot that run was given; no manifest may describe another run's object; `list` must show
 * exactly the successful runs' backups as complete. A run may fail, with one line, but never "succeed" into
 * another's name.
 *
 * Seeded: which snapshot each run saves and its start offset. The seed is printed on failure; rerun one with
 * ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { assertOk, type CliResult, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";

const N = 8;
const SEED = testSeed(Date.now() % 2 ** 31);

interface Snapshot {
  path: string;
  sha256: string;
}

describe(`${N} concurrent saves of one cluster (seed ${SEED})`, () => {
  let work: string;
  let etcd: EtcdServer;
  let identity: string;
  let recipient: string;
  const snapshots: Snapshot[] = [];
  const servers: TestS3Server[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-concurrent-"));
    ({ identity, recipient } = await keygen(work));
    etcd = await startEtcd();
    // Distinct snapshots (different revisions), so a backup's content tells which run wrote it.
    for (let i = 0; i < 4; i++) {
      await fillKeys(etcd, 50, { prefix: `/registry/configmaps/default/s${i}-` });
      const path = join(work, `snap-${i}.db`);
      await etcd.ctl(["snapshot", "save", path]);
      snapshots.push({ path, sha256: createHash("sha256").update(readFileSync(path)).digest("hex") });
    }
    await etcd.destroy();
  });
  after(async () => {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function s3Destination(conditionalWrites: boolean) {
    const s3 = await startS3Server({ conditionalWrites });
    servers.push(s3);
    await s3.createBucket("backups");
    return {
      to: "s3://backups/etcd",
      env: {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_EC2_METADATA_DISABLED: "true",
      },
    };
  }

  async function race(
    to: string,
    env: NodeJS.ProcessEnv,
    seed: number,
    report: (line: string) => void,
  ): Promise<void> {
    const random = new SeededRandom(seed);
    const plan = Array.from({ length: N }, () => ({
      snapshot: random.pick(snapshots),
      delayMs: Math.floor(random.next() * 150),
    }));
    // Start on a second boundary so that the runs' start times share one second as far as the machine allows.
    await sleep(1000 - (Date.now() % 1000));
    const results: CliResult[] = await Promise.all(
      plan.map(async (p) => {
        await sleep(p.delayMs);
        return await runCli(
          [
            "save",
            "--from-file",
            p.snapshot.path,
            "--to",
            to,
            "--cluster",
            "prod",
            "--recipient",
            recipient,
            "-o",
            "json",
          ],
          { env },
        );
      }),
    );
    const succeeded = new Map<string, { sha256: string; run: string }>();
    for (const [i, r] of results.entries()) {
      if (r.code !== 0) {
        // Refused, never half-done: one line naming the conflict.
        assert.equal(r.code, 1, `run ${i}: ${r.stderr}`);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, `run ${i} printed more than one line: ${r.stderr}`);
        assert.match(lines[0]!, /^etcd-backup: .*(took the name|appeared|no free name|replaced)/);
        continue;
      }
      const out = JSON.parse(r.stdout) as { key: string; manifest: { sha256: string; run: string } };
      assert.ok(!succeeded.has(out.key), `runs share the name ${out.key}`);
      assert.equal(
        out.manifest.sha256,
        plan[i]!.snapshot.sha256,
        `run ${i}'s manifest describes another snapshot`,
      );
      succeeded.set(out.key, { sha256: plan[i]!.snapshot.sha256, run: out.manifest.run });
    }
    assert.ok(succeeded.size >= 1, "no save succeeded");
    report(`${succeeded.size} of ${N} saves exited 0: ${[...succeeded.keys()].sort().join(" ")}`);
    assert.equal(new Set([...succeeded.values()].map((s) => s.run)).size, succeeded.size, "run ids repeat");

    const list = await runCli(["list", "--to", to, "-o", "json"], { env });
    assertOk(list);
    const entries = JSON.parse(list.stdout) as {
      name: string;
      state: string;
      manifest?: { sha256: string; run?: string };
    }[];
    const complete = entries.filter((e) => e.state === "complete");
    assert.deepEqual(
      complete.map((e) => e.name).sort(),
      [...succeeded.keys()].sort(),
      `list disagrees with the runs that exited 0:\n${list.stdout}`,
    );
    assert.deepEqual(
      entries.filter((e) => e.state !== "complete").map((e) => `${e.state} ${e.name}`),
      [],
      "a failed run left something behind",
    );
    for (const e of complete) {
      assert.equal(e.manifest?.run, succeeded.get(e.name)?.run, `${e.name}: the manifest is another run's`);
      const verify = await runCli(["verify", e.name, "--to", to, "-i", identity, "-o", "json"], { env });
      assert.equal(verify.code, 0, `${e.name} does not verify:\n${verify.stdout}\n${verify.stderr}`);
      const report = JSON.parse(verify.stdout) as { ok: boolean; checks: { name: string; ok: boolean }[] };
      assert.ok(
        report.checks.some((c) => c.name === "object sha256" && c.ok),
        verify.stdout,
      );
      assert.ok(
        report.checks.some((c) => c.name === "manifest sha256" && c.ok),
        verify.stdout,
      );
    }
  }

  test("to a directory", async (t) => {
    const dir = join(work, "dir");
    mkdirSync(dir);
    await withSeed(SEED, () => race(dir, {}, SEED, (l) => t.diagnostic(l)));
  });

  test("to S3 that honours conditional writes (stand-in for AWS S3's If-None-Match)", async (t) => {
    const { to, env } = await s3Destination(true);
    await withSeed(SEED + 1, () => race(to, env, SEED + 1, (l) => t.diagnostic(l)));
  });

  test("to S3 that ignores conditional writes (s3rver as it is)", async (t) => {
    const { to, env } = await s3Destination(false);
    await withSeed(SEED + 2, () => race(to, env, SEED + 2, (l) => t.diagnostic(l)));
  });
});
