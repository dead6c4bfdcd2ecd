/**
 * `prune` with a revision log: after the full backups a policy drops, the segments no kept recovery point
 * needs go too, and what is left still restores `--revision` exactly (compared with the live etcd), while
 * points whose full backup was pruned are refused with one line. `--dry-run` deletes nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import {
  assertSameAsLiveAt,
  logStoreKinds,
  startLog,
  useLogTestBed,
  waitForReach,
} from "../point-in-time/harness.ts";
import { writePhase } from "../point-in-time/phases.ts";
import { currentRevision } from "../point-in-time/workload.ts";

// Once per store kind: a directory, and a bucket on the real MinIO server.
for (const { kind, skip } of logStoreKinds()) {
  describe(`prune keeps the revision log a kept recovery point needs (${kind})`, { skip }, () => {
    const bed = useLogTestBed("point-in-time prune", kind);

    test("--keep-last 2 cuts the chain at the oldest kept backup; what is kept restores exactly, the rest is refused", async () => {
      const { etcd, work, dest, store, env, kv, identity, recipient, where, rng } = bed.get();
      const cli = (args: string[], options: { timeoutMs?: number } = {}) => runCli(args, { env, ...options });
      const save = [
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dest,
        "--recipient",
        recipient,
        "-o",
        "json",
      ];
      const saveAt = async (): Promise<{ key: string; revision: number }> => {
        const r = await cli(save);
        assertOk(r);
        const parsed = JSON.parse(r.stdout) as { key: string; manifest: { etcd: { revision: number } } };
        return { key: parsed.key, revision: parsed.manifest.etcd.revision };
      };
      try {
        await writePhase(kv, rng, 0, 20);
        const b1 = await saveAt();
        const log = startLog(
          ["--endpoints", etcd.endpoint, "--to", dest, "--recipient", recipient, "--segment-interval", "1s"],
          env,
        );
        let last: number;
        let b2: { key: string; revision: number };
        let b3: { key: string; revision: number };
        try {
          // Three phases with segments closing in between, a full backup after the first and the second.
          const p1 = await writePhase(kv, rng, 1, 40);
          await waitForReach(store, "etcd", p1, log);
          await sleep(1100); // backup names are to the second
          b2 = await saveAt();
          const p2 = await writePhase(kv, rng, 2, 40);
          await waitForReach(store, "etcd", p2, log);
          await sleep(1100);
          b3 = await saveAt();
          last = await writePhase(kv, rng, 3, 40);
          await waitForReach(store, "etcd", last, log);
        } finally {
          const code = await log.stop();
          assert.equal(code, 0, `log exited ${code}: ${log.stderr()}`);
        }
        assert.equal(last, await currentRevision(kv));
        const [before] = await readLogCatalog(store, { cluster: "etcd" });
        assert.equal(before!.chains.length, 1, "one chain expected");
        const chain = before!.chains[0]!;
        assert.equal(chain.base, b1.revision);
        const segmentsBefore = chain.segments.length;
        const toGo = chain.segments.filter((s) => s.manifest.lastRevision <= b2.revision).length;
        assert.ok(toGo >= 1, `${where}: no segment ends before the second backup`);

        // A dry run says what would go and deletes nothing.
        const filesBefore = await bed.get().keys();
        const dry = await cli(["prune", "--to", dest, "--keep-last", "2", "--dry-run", "-o", "json"]);
        assertOk(dry);
        const plan = JSON.parse(dry.stdout) as {
          backups: { name: string; action: string }[];
          log: {
            chains: {
              chain: number;
              action: string;
              keptRevisions: { from: number; to: number } | null;
              keptSegments: number;
              removedSegments: number;
            }[];
            removed: { key: string; reason: string }[];
          };
        };
        assert.deepEqual(
          plan.backups.filter((b) => b.action === "delete").map((b) => b.name),
          [b1.key],
        );
        assert.deepEqual(plan.log.chains, [
          {
            ...plan.log.chains[0],
            chain: b1.revision,
            action: "cut",
            keptRevisions: { from: b2.revision, to: last },
            keptSegments: segmentsBefore - toGo,
            removedSegments: toGo,
          },
        ]);
        assert.equal(plan.log.removed.length, toGo * 2, "each segment goes with its manifest");
        assert.deepEqual(await bed.get().keys(), filesBefore, "the dry run deleted something");

        // The real run, as a table.
        const real = await cli(["prune", "--to", dest, "--keep-last", "2"]);
        assertOk(real);
        assert.match(real.stdout, /revision log \(point-in-time recovery\)/);
        assert.match(real.stdout, new RegExp(`cut\\s+etcd\\s+${b1.revision}\\s+${b2.revision}-${last}`));
        assert.match(real.stdout, new RegExp(`removed ${toGo} segment\\(s\\)`));
        process.stdout.write(`${real.stdout.trimEnd().replace(/^/gm, "# ")}\n`);
        const [afterPrune] = await readLogCatalog(store, { cluster: "etcd" });
        const kept = afterPrune!.chains[0]!;
        assert.equal(kept.segments.length, segmentsBefore - toGo);
        assert.equal(kept.start, b2.revision);
        assert.equal(kept.reach, last);
        assert.deepEqual(kept.holes, [], "a pruned prefix must not read as a hole");
        assert.ok(
          !(await bed.get().keys()).some((f) => f.startsWith(b1.key)),
          "the first backup is still there",
        );

        // Kept points restore exactly: the oldest kept one, one in each later phase, the last.
        const points = [
          b2.revision,
          rng.int(b2.revision + 1, b3.revision),
          rng.int(b3.revision + 1, last),
          last,
        ];
        for (const [i, revision] of points.entries()) {
          const out = join(work, `point-${i}.db`);
          const r = await cli(
            ["restore", "--revision", String(revision), "--to", dest, "-i", identity, "--to-file", out],
            { timeoutMs: 240_000 },
          );
          assertOk(r);
          assert.match(r.stdout, new RegExp(`at revision ${revision} `), `${where}: ${r.stdout}`);
          const compared = await assertSameAsLiveAt(etcd, out, revision, `${where}, --revision ${revision}`);
          process.stdout.write(`# --revision ${revision}: ${compared} keys equal to etcd\n`);
        }

        // A point whose full backup was pruned is refused with one line.
        const gone = rng.int(b1.revision + 1, b2.revision - 1);
        const refused = await cli([
          "restore",
          "--revision",
          String(gone),
          "--to",
          dest,
          "-i",
          identity,
          "--to-file",
          join(work, "gone.db"),
        ]);
        assertOneLineError(refused, 1, new RegExp(String(gone)));
        process.stdout.write(`# --revision ${gone}: ${refused.stderr}`);

        // A log retention window that starts after the third backup: points before it are the backups alone,
        // so the chain starts over at the third backup (the newest one before the window).
        const windowed = await cli([
          "prune",
          "--to",
          dest,
          "--keep-last",
          "2",
          "--keep-log-within",
          "1s",
          "-o",
          "json",
        ]);
        assertOk(windowed);
        const w = JSON.parse(windowed.stdout) as typeof plan;
        assert.deepEqual(
          w.log.chains.map((c) => [c.action, c.keptRevisions]),
          [["cut", { from: b3.revision, to: last }]],
        );
        const [afterWindow] = await readLogCatalog(store, { cluster: "etcd" });
        assert.equal(afterWindow!.chains[0]!.start, b3.revision);
        const atB3 = join(work, "window-b3.db");
        assertOk(
          await cli(
            ["restore", "--revision", String(last), "--to", dest, "-i", identity, "--to-file", atB3],
            { timeoutMs: 240_000 },
          ),
        );
        await assertSameAsLiveAt(etcd, atB3, last, `${where}, after the window, --revision ${last}`);
        assertOneLineError(
          await cli([
            "restore",
            "--revision",
            String(b3.revision - 1),
            "--to",
            dest,
            "-i",
            identity,
            "--to-file",
            join(work, "before-window.db"),
          ]),
          1,
          new RegExp(`revisions ${b3.revision}-${last}`),
        );
      } finally {
        kv.close();
      }
    });
  });
}
