import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import type { EtcdKv } from "../fixtures/etcd-kv.ts";
import { startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import type { SeededRandom } from "../fixtures/seeded-random.ts";
import { assertSameAsLiveAt, startLog, useLogTestBed, waitForReach } from "../point-in-time/harness.ts";
import { currentRevision } from "../point-in-time/workload.ts";
import { compareDumps, etcdDump, snapshotTruth } from "../snapshot/differential.ts";

async function writeSome(kv: EtcdKv, rng: SeededRandom, n: number): Promise<number> {
  for (let i = 0; i < n; i++)
    await kv.txn([{ key: `/gap/k-${rng.int(0, 50)}`, value: rng.bytes(rng.int(1, 300)) }]);
  return await currentRevision(kv);
}

describe("point-in-time: etcd compacted past the log's position", () => {
  const bed = useLogTestBed("point-in-time: etcd compacted past the log's position");

  test("the gap is recorded, a new chain starts on a new full backup, a point inside the gap is refused in one line", async () => {
    const { etcd, work, dest, store, kv, where, rng } = bed.get();
    const args = ["--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt", "--segment-interval", "500ms"];
    await writeSome(kv, rng, 20);
    assertOk(await runCli(["save", "--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt"]));
    const base1 = await currentRevision(kv);

    // The log runs and records revisions up to end1.
    const first = startLog(args);
    const end1 = await writeSome(kv, rng, 60);
    try {
      await waitForReach(store, "etcd", end1, first);
    } finally {
      assert.equal(await first.stop(), 0, first.stderr());
    }
    const truthEnd1 = await etcdDump(etcd, { rev: end1 });

    // While the log is down, etcd moves on and compacts what the log has not read.
    const compactedTo = await writeSome(kv, rng, 40);
    await kv.compact(compactedTo);

    const port = await freePort();
    const second = startLog([...args, "--metrics-addr", `127.0.0.1:${port}`]);
    let end2 = 0;
    try {
      const deadline = Date.now() + 30_000;
      while (!/new chain on/.test(second.stderr())) {
        assert.ok(Date.now() < deadline, `no new chain: ${second.stderr()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      end2 = await writeSome(kv, rng, 30);
      await waitForReach(store, "etcd", end2, second);
      // Idle: the log's progress requests keep the window moving with no revision to record.
      await new Promise((r) => setTimeout(r, 2500));
      // Metrics and the status page of the running log.
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /^etcd_backup_log_gaps_total 1$/m);
      assert.match(metrics, new RegExp(`^etcd_backup_log_revision ${end2}$`, "m"));
      assert.match(metrics, /^etcd_backup_log_segments_total\{result="written"\} [1-9]/m);
      assert.match(metrics, /^etcd_backup_log_segments_total\{result="failed"\} 0$/m);
      const lag = Number(/^etcd_backup_log_lag_seconds (\S+)$/m.exec(metrics)?.[1]);
      assert.ok(lag >= 0 && lag < 3, `lag ${lag}`);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      assert.match(page, new RegExp(`recoverable from .* \\(revision \\d+\\) to .* \\(revision ${end2}\\)`));
    } finally {
      assert.equal(await second.stop(), 0, second.stderr());
    }
    assert.match(
      second.stderr(),
      new RegExp(`gap after revision ${end1}: etcd compacted its history to revision ${compactedTo}`),
    );

    const [log] = await readLogCatalog(store, { cluster: "etcd" });
    assert.equal(log!.chains.length, 2, `${where}: two chains expected`);
    const [chain1, chain2] = log!.chains;
    assert.equal(chain1!.base, base1);
    assert.equal(chain1!.reach, end1);
    assert.ok(chain2!.base >= compactedTo, `the new chain's base ${chain2!.base} is before the compaction`);
    assert.equal(log!.gaps.length, 1);
    assert.equal(log!.gaps[0]!.from, end1 + 1);
    assert.equal(log!.gaps[0]!.to, chain2!.base - 1);

    // `list` shows the windows and the gap.
    const listed = await runCli(["list", "--to", dest]);
    assertOk(listed);
    assert.match(listed.stdout, new RegExp(`etcd +recoverable .* ${base1}-${end1} `));
    assert.match(listed.stdout, new RegExp(`etcd +recoverable .* ${chain2!.base}-${end2} `));
    assert.match(listed.stdout, new RegExp(`etcd +GAP .* ${end1 + 1}-${chain2!.base - 1} +etcd compacted`));
    const json = await runCli(["list", "--to", dest, "--log", "-o", "json"]);
    assertOk(json);
    const windows = JSON.parse(json.stdout) as {
      cluster: string;
      recoverable: { fromRevision: number; toRevision: number }[];
      gaps: { fromRevision: number; toRevision: number }[];
    }[];
    assert.deepEqual(
      windows.map((w) => ({
        cluster: w.cluster,
        recoverable: w.recoverable.map((r) => [r.fromRevision, r.toRevision]),
        gaps: w.gaps.map((g) => [g.fromRevision, g.toRevision]),
      })),
      [
        {
          cluster: "etcd",
          recoverable: [
            [base1, end1],
            [chain2!.base, end2],
          ],
          gaps: [[end1 + 1, chain2!.base - 1]],
        },
      ],
    );

    // A point inside the gap: refused, one line naming the recoverable ranges.
    const inside = rng.int(end1 + 1, chain2!.base - 1);
    const refused = await runCli([
      "restore",
      "--revision",
      String(inside),
      "--to",
      dest,
      "--to-file",
      join(work, "x.db"),
    ]);
    assertOneLineError(
      refused,
      1,
      new RegExp(
        `cannot restore cluster etcd to revision ${inside}: the log can restore revisions ${base1}-${end1} \\(.*\\); revisions ${chain2!.base}-${end2} \\(.*\\); gaps at revisions ${end1 + 1}-${chain2!.base - 1}`,
      ),
    );

    // Both sides of the gap restore: the old chain to its end (compared with etcd before the compaction), the new one live.
    const old = join(work, "end1.db");
    // Naming the base: the old chain's own backup works, the new chain's cannot serve a point before it.
    assertOneLineError(
      await runCli([
        "restore",
        chain2!.record!.backup,
        "--revision",
        String(end1),
        "--to",
        dest,
        "--to-file",
        old,
      ]),
      1,
      new RegExp(
        `backup ${chain2!.record!.backup.replace(/[.]/g, "\\.")} cannot be the base for revision ${end1}`,
      ),
    );
    assertOk(
      await runCli([
        "restore",
        chain1!.record!.backup,
        "--revision",
        String(end1),
        "--to",
        dest,
        "--to-file",
        old,
      ]),
    );
    const diff = compareDumps(truthEnd1, await snapshotTruth(old));
    assert.deepEqual(diff.lines, [], `${where}: revision ${end1}`);
    const now = join(work, "end2.db");
    assertOk(await runCli(["restore", "--revision", String(end2), "--to", dest, "--to-file", now]));
    await assertSameAsLiveAt(etcd, now, end2, where);

    // --data-dir: a member data dir at that point (etcdctl 3.4 here: no revision bump, a warning says so).
    const dataDir = join(work, "member");
    const intoDir = await runCli([
      "restore",
      "--revision",
      String(end2),
      "--to",
      dest,
      "--data-dir",
      dataDir,
    ]);
    assertOk(intoDir);
    assert.match(intoDir.stdout, new RegExp(`at revision ${end2} .* into data dir ${dataDir}`));
    const member = await startEtcd({ dataDir });
    try {
      const served = await etcdDump(member);
      const diffDir = compareDumps(await etcdDump(etcd, { rev: end2 }), { ...served, revision: end2 });
      assert.deepEqual(diffDir.lines, [], `${where}: --data-dir`);
      assert.ok(served.revision >= end2);
    } finally {
      await member.destroy();
    }

    // A time after the last write, while the cluster was idle: the window reaches it (head.json).
    const idle = new Date(Date.parse(chain2!.head!.confirmed) - 200);
    assert.ok(
      idle.getTime() > Date.parse(chain2!.segments.at(-1)!.manifest.lastTime),
      "no idle confirmation",
    );
    const atIdle = await runCli([
      "restore",
      "--at",
      idle.toISOString(),
      "--to",
      dest,
      "--to-file",
      join(work, "idle.db"),
    ]);
    assertOk(atIdle);
    assert.match(atIdle.stdout, new RegExp(`at revision ${end2} `));
  });

  test("usage errors are one line, exit 2: a Talos source, a bad --at, latest with --at", async () => {
    const { work } = bed.get();
    assertOneLineError(
      await runCli(["log", "--source", "talos", "--to", work, "--no-encrypt"]),
      2,
      /cannot use --source talos: Talos' apid exposes etcd snapshots but no watch/,
    );
    assertOneLineError(
      await runCli(["restore", "--at", "soon", "--to", work, "--to-file", join(work, "y.db")]),
      2,
      /--at "soon" is not a time/,
    );
    assertOneLineError(
      await runCli(["restore", "latest", "--at", "10:00", "--to", work, "--to-file", join(work, "y.db")]),
      2,
      /latest with --at\/--revision is ambiguous/,
    );
    mkdirSync(join(work, "empty"), { recursive: true });
    assertOneLineError(
      await runCli([
        "restore",
        "--revision",
        "5",
        "--to",
        join(work, "empty"),
        "--to-file",
        join(work, "y.db"),
      ]),
      1,
      /no revision log in .* \(run `etcd-backup log`/,
    );
  });
});
