/**
 * The point-in-time scenario both e2e tests (directory store, S3) run: a full backup, `etcd-backup log`
 * running while a seeded writer does puts, overwrites, deletes, multi-key Txns, lease-attached keys, lease
 * expiries and revokes, and a second full backup halfway; then `restore --at` at quiet checkpoints and
 * `restore --revision` at random revisions, each compared field for field with the live etcd at that revision,
 * served by a member started on the restored file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Store } from "../../src/store/store.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";
import { SeededRandom } from "../fixtures/seeded-random.ts";
import { assertSameAsLiveAt, startLog, waitForReach } from "./harness.ts";
import { currentRevision, runWorkload } from "./workload.ts";

export interface ScenarioOptions {
  etcd: EtcdServer;
  /** `--to` for the CLI, and the same store opened in the test. */
  dest: string;
  store: Store;
  env: NodeJS.ProcessEnv;
  identity: string;
  recipient: string;
  work: string;
  seed: number;
  durationMs: number;
  timePoints: number;
  revisionPoints: number;
}

export async function pointInTimeScenario(o: ScenarioOptions): Promise<void> {
  const rng = new SeededRandom(o.seed);
  const where = `seed ${o.seed} (rerun with ETCD_BACKUP_TEST_SEED=${o.seed})`;
  const kv = new EtcdKv(o.etcd.endpoint);
  try {
    const initial = [];
    for (let i = 0; i < 300; i++)
      initial.push({ key: `/registry/configmaps/default/base-${i}`, value: rng.bytes(rng.int(10, 3000)) });
    await kv.putAll(initial, { perTxn: 50 });
    const save = ["save", "--endpoints", o.etcd.endpoint, "--to", o.dest, "--recipient", o.recipient];
    assertOk(await runCli(save, { env: o.env }));
    const baseRevision = await currentRevision(kv);

    const log = startLog(
      [
        "--endpoints",
        o.etcd.endpoint,
        "--to",
        o.dest,
        "--recipient",
        o.recipient,
        "--segment-interval",
        "1s",
      ],
      o.env,
    );
    let result: Awaited<ReturnType<typeof runWorkload>>;
    let midBackup: { key: string; revision: number } | undefined;
    try {
      result = await runWorkload(kv, rng, {
        durationMs: o.durationMs,
        checkpointEveryMs: Math.max(1000, o.durationMs / (o.timePoints + 4)),
        during: async () => {
          const mid = await runCli([...save, "-o", "json"], { env: o.env });
          assertOk(mid);
          const parsed = JSON.parse(mid.stdout) as { key: string; manifest: { etcd: { revision: number } } };
          midBackup = { key: parsed.key, revision: parsed.manifest.etcd.revision };
          // One revision with 300 events (more than etcd's default 128 operations per Txn).
          await kv.delete("/registry/configmaps/default/base-", "/registry/configmaps/default/base.");
        },
      });
      await waitForReach(o.store, "etcd", result.lastRevision, log);
    } finally {
      const code = await log.stop();
      assert.equal(code, 0, `log exited ${code}: ${log.stderr()}`);
    }
    assert.ok(midBackup, "the second full backup did not run");
    assert.doesNotMatch(log.stderr(), /gap/, `no gap expected: ${log.stderr()}`);
    assert.ok(
      result.checkpoints.length >= o.timePoints,
      `only ${result.checkpoints.length} quiet checkpoints`,
    );
    assert.ok(
      result.lastRevision - baseRevision > 200,
      `${where}: only ${result.lastRevision - baseRevision} revisions written`,
    );

    process.stdout.write(
      `# ${result.operations} operations, revisions ${baseRevision + 1}-${result.lastRevision}, ${result.checkpoints.length} quiet checkpoints\n`,
    );
    const points: { args: string[]; revision: number; label: string }[] = [];
    const checkpoints = [...result.checkpoints];
    for (let i = 0; i < o.timePoints; i++) {
      const [c] = checkpoints.splice(rng.int(0, checkpoints.length - 1), 1);
      points.push({
        args: ["--at", c!.time.toISOString()],
        revision: c!.revision,
        label: `--at ${c!.time.toISOString()}`,
      });
    }
    for (let i = 0; i < o.revisionPoints; i++) {
      const revision = rng.int(baseRevision + 1, result.lastRevision);
      points.push({ args: ["--revision", String(revision)], revision, label: `--revision ${revision}` });
    }
    // The very last revision and the base itself are points too.
    points.push({
      args: ["--revision", String(result.lastRevision)],
      revision: result.lastRevision,
      label: "last",
    });
    for (const [i, p] of points.entries()) {
      const out = join(o.work, `point-${i}.db`);
      const r = await runCli(["restore", ...p.args, "--to", o.dest, "-i", o.identity, "--to-file", out], {
        env: o.env,
        timeoutMs: 240_000,
      });
      assertOk(r);
      // Points after the second full backup replay from it, not from the chain's first one.
      const base = midBackup && p.revision >= midBackup.revision ? midBackup.key : undefined;
      if (base)
        assert.ok(
          r.stdout.includes(`(${base} + `),
          `${where}, ${p.label}: not replayed from ${base}: ${r.stdout}`,
        );
      assert.match(
        r.stdout,
        new RegExp(`at revision ${p.revision} `),
        `${where}, ${p.label}: ${r.stdout}${r.stderr}`,
      );
      const compared = await assertSameAsLiveAt(o.etcd, out, p.revision, `${where}, ${p.label}`);
      process.stdout.write(`# ${p.label}: revision ${p.revision}, ${compared} keys equal\n`);
    }
  } finally {
    kv.close();
  }
}
