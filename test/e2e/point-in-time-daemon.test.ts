/**
 * `daemon --continuous`: the revision log runs beside the schedule. With a real etcd, a store (a directory, and a
 * bucket on the real MinIO server) and a seeded writer: the status page and /metrics show the recoverable window, scheduled runs prune the log's
 * segments with the backups (the chain is cut at the oldest kept backup), SIGTERM closes the open segment, and
 * what is left restores `--revision` exactly (compared with the live etcd).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { scrape, spawnDaemon, waitFor } from "../daemon/harness.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { freePort } from "../fixtures/ports.ts";
import { assertSameAsLiveAt, logStoreKinds, useLogTestBed, waitForReach } from "../point-in-time/harness.ts";
import { writePhase } from "../point-in-time/phases.ts";
import { currentRevision } from "../point-in-time/workload.ts";

// Once per store kind: a directory, and a bucket on the real MinIO server.
for (const { kind, skip } of logStoreKinds()) {
  describe(`daemon --continuous (${kind})`, { skip }, () => {
    const bed = useLogTestBed("daemon --continuous", kind);

    test("runs the log beside the schedule, prunes it with the backups, and what is kept restores exactly", async () => {
      const { etcd, work, dest, store, env, kv, identity, recipient, where, rng } = bed.get();
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      await writePhase(kv, rng, 0, 20);
      const daemon = spawnDaemon(
        [
          ...["--schedule", "*/3 * * * * *", "--cluster", "pitr"],
          ...["--endpoints", etcd.endpoint, "--to", dest, "--recipient", recipient, "--identity", identity],
          ...["--keep-last", "2", "--continuous", "--segment-interval", "1s"],
          ...["--metrics-addr", `127.0.0.1:${port}`, "--log-format", "json"],
        ],
        env,
      );
      let last = 0;
      try {
        // Writes across several scheduled runs: each run's prune cuts the chain further.
        for (let phase = 1; phase <= 6; phase++) {
          last = await writePhase(kv, rng, phase, 30);
          await new Promise((r) => setTimeout(r, 1500));
        }
        await waitForReach(store, "pitr", last, undefined, 30_000);
        const cut = await waitFor("a scheduled run to cut the chain at its oldest kept backup", async () => {
          const [log] = await readLogCatalog(store, { cluster: "pitr" });
          const chain = log?.chains.at(-1);
          return chain && chain.start > chain.base ? chain : undefined;
        });
        process.stdout.write(
          `# chain ${cut.base}: pruned through ${cut.start}, ${cut.segments.length} segments up to ${cut.reach}\n`,
        );

        // The status page's window starts where the prune cut the chain, not at its base any more.
        const shownFrom = await waitFor("the status page's window to start after the cut", async () => {
          const page = await (await fetch(`${base}/`)).text();
          const m =
            /Point-in-time recovery \(restore --at\): recoverable from \S+ \(revision (\d+)\) to \S+ \(revision \d+\)/.exec(
              page,
            );
          return m && Number(m[1]) > cut.base ? Number(m[1]) : undefined;
        });
        assert.ok(shownFrom >= cut.start, `the page shows ${shownFrom}, the catalog ${cut.start}`);
        const metrics = await scrape(base);
        assert.ok((metrics.get("etcd_backup_log_revision") ?? 0) >= last, "etcd_backup_log_revision behind");
        assert.ok((metrics.get('etcd_backup_log_segments_total{result="written"}') ?? 0) >= 3);
        assert.ok((metrics.get('etcd_backup_runs_total{result="success"}') ?? 0) >= 3);
        assert.equal((await fetch(`${base}/readyz`)).status, 200);

        // Written after the last close: SIGTERM must close it before the daemon exits.
        last = await writePhase(kv, rng, 7, 10);
      } finally {
        const code = await daemon.stop();
        assert.equal(code, 0, `daemon exited ${code}:\n${daemon.output().slice(-4000)}`);
      }
      assert.equal(last, await currentRevision(kv));
      const [log] = await readLogCatalog(store, { cluster: "pitr" });
      const chain = log!.chains.at(-1)!;
      assert.equal(chain.reach, last, `${where}: the open segment was not closed at SIGTERM`);
      assert.deepEqual(chain.holes, []);
      assert.ok(
        daemon.lines().some((l) => l.msg === "pruned the revision log"),
        "no run pruned the revision log",
      );

      try {
        for (const revision of [chain.start, rng.int(chain.start + 1, last), last]) {
          const out = join(work, `at-${revision}.db`);
          const r = await runCli(
            ["restore", "--revision", String(revision), "--to", dest, "-i", identity, "--to-file", out],
            { env, timeoutMs: 240_000 },
          );
          assertOk(r);
          const compared = await assertSameAsLiveAt(etcd, out, revision, `${where}, --revision ${revision}`);
          process.stdout.write(`# --revision ${revision}: ${compared} keys equal to etcd\n`);
        }
      } finally {
        kv.close();
      }
    });
  });
}
