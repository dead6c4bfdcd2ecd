/**
 * `verify --log` checks every chain of the revision log and names each problem (a hole, a segment that does
 * not decrypt, a sha256 that does not match, a manifest that does not match its segment), exit 1; and
 * `verify --test-restore --at TIME | --revision N` rebuilds the point, starts etcd on it and reads back the
 * revision and key count, compared with the live etcd at that revision.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import { logStoreKinds, startLog, useLogTestBed, waitForReach } from "../point-in-time/harness.ts";
import { writePhase } from "../point-in-time/phases.ts";
import { etcdDump } from "../snapshot/differential.ts";

interface TestRestoreJson {
  ok: boolean;
  testRestore: { revision: number; matches: boolean; etcd: { revision: number; keys: number } };
}

// Once per store kind: a directory, and a bucket on the real MinIO server.
for (const { kind, skip } of logStoreKinds()) {
  describe(`verify checks the revision log (${kind})`, { skip }, () => {
    const bed = useLogTestBed("point-in-time verify", kind);

    test("a sound log passes, test-restores at a time and a revision; each kind of damage is named", async () => {
      const { etcd, dest, store, env, kv, identity, recipient, where, rng } = bed.get();
      const { readObject, writeObject, removeObject } = bed.get();
      const cli = (args: string[], options: { timeoutMs?: number } = {}) => runCli(args, { env, ...options });
      try {
        await writePhase(kv, rng, 0, 30);
        assertOk(await cli(["save", "--endpoints", etcd.endpoint, "--to", dest, "--recipient", recipient]));
        const log = startLog(
          ["--endpoints", etcd.endpoint, "--to", dest, "--recipient", recipient, "--segment-interval", "1s"],
          env,
        );
        const ends: number[] = [];
        let quiet: { time: Date; revision: number } | undefined;
        try {
          // Seven phases, each closed in its own segment(s) before the next starts.
          for (let phase = 1; phase <= 7; phase++) {
            ends.push(await writePhase(kv, rng, phase, 25));
            await waitForReach(store, "etcd", ends.at(-1)!, log);
            if (phase === 3) {
              await sleep(300);
              quiet = { time: new Date(), revision: ends.at(-1)! };
              await sleep(300);
            }
          }
        } finally {
          const code = await log.stop();
          assert.equal(code, 0, `log exited ${code}: ${log.stderr()}`);
        }
        const [clusterLog] = await readLogCatalog(store, { cluster: "etcd" });
        const chain = clusterLog!.chains[0]!;
        assert.ok(chain.segments.length >= 7, `${where}: only ${chain.segments.length} segments`);
        const last = ends.at(-1)!;
        assert.equal(chain.reach, last);

        // Sound: passes, with figures.
        const sound = await cli(["verify", "--log", "--to", dest, "-i", identity]);
        assertOk(sound);
        assert.match(sound.stdout, new RegExp(`1 chain\\(s\\), ${chain.segments.length} segment\\(s\\)`));
        assert.match(sound.stdout, /log verification passed/);

        // --test-restore at a quiet time: etcd serves that revision with the live etcd's key count.
        const atTime = await cli(
          ["verify", "--test-restore", "--at", quiet!.time.toISOString(), "--to", dest, "-i", identity],
          { timeoutMs: 240_000 },
        );
        assertOk(atTime);
        const liveAtQuiet = await etcdDump(etcd, { rev: quiet!.revision });
        assert.match(
          atTime.stdout,
          new RegExp(`serves revision ${quiet!.revision} with ${liveAtQuiet.keys.size} keys`),
          `${where}: ${atTime.stdout}${atTime.stderr}`,
        );
        process.stdout.write(`${atTime.stdout.trimEnd().replace(/^/gm, "# ")}\n`);

        // --revision, as JSON: a revision inside a later segment.
        const revision = rng.int(ends[3]! + 1, last);
        const atRevision = await cli(
          [
            "verify",
            "--test-restore",
            "--revision",
            String(revision),
            "--to",
            dest,
            "-i",
            identity,
            "-o",
            "json",
          ],
          { timeoutMs: 240_000 },
        );
        assertOk(atRevision);
        const json = JSON.parse(atRevision.stdout) as TestRestoreJson;
        const liveAtRevision = await etcdDump(etcd, { rev: revision });
        assert.equal(json.ok, true);
        assert.equal(json.testRestore.revision, revision);
        assert.equal(json.testRestore.etcd.revision, revision);
        assert.equal(json.testRestore.etcd.keys, liveAtRevision.keys.size);

        // Usage mistakes are one line, exit 2.
        assertOneLineError(
          await cli(["verify", "--at", "10m", "--to", dest, "-i", identity]),
          2,
          /--test-restore/,
        );
        assertOneLineError(
          await cli(["verify", "latest", "--log", "--to", dest, "-i", identity]),
          2,
          /exclude each other/,
        );

        // Damage: one segment's bytes, another's sha256, another's manifest counts, one segment gone from the
        // middle (a hole between segments) and the last one (only the head shows it).
        const [flipped, badHash, badCount, gone] = chain.segments.slice(1);
        const lastSegment = chain.segments.at(-1)!;
        assert.notEqual(lastSegment.key, gone!.key);
        await removeObject(lastSegment.key);
        await removeObject(`${lastSegment.key}.json`);
        const bytes = await readObject(flipped!.key);
        bytes[bytes.length - 40]! ^= 0xff;
        await writeObject(flipped!.key, bytes);
        const editManifest = async (key: string, edit: (m: Record<string, unknown>) => void) => {
          const m = JSON.parse((await readObject(`${key}.json`)).toString("utf8")) as Record<string, unknown>;
          edit(m);
          await writeObject(`${key}.json`, Buffer.from(JSON.stringify(m)));
        };
        await editManifest(badHash!.key, (m) => {
          m.sha256 = "0".repeat(64);
        });
        await editManifest(badCount!.key, (m) => {
          m.events = (m.events as number) + 1;
        });
        await removeObject(gone!.key);
        await removeObject(`${gone!.key}.json`);

        const damaged = await cli(["verify", "--log", "--to", dest, "-i", identity]);
        process.stdout.write(`${damaged.stdout.trimEnd().replace(/^/gm, "# ")}\n`);
        assert.equal(damaged.code, 1, `exit ${damaged.code}: ${damaged.stdout}${damaged.stderr}`);
        const lineFor = (key: string) =>
          damaged.stdout.split("\n").find((l) => l.includes(key) && l.includes("FAILED")) ?? "";
        assert.match(lineFor(flipped!.key), /FAILED/, `${where}: the flipped segment is not named`);
        assert.match(lineFor(badHash!.key), /sha256 [0-9a-f]{64} does not match its manifest's 0{64}/);
        assert.match(lineFor(badCount!.key), /its manifest says/);
        const g = gone!.manifest;
        assert.match(
          damaged.stdout,
          new RegExp(
            `FAILED cluster etcd, chain ${chain.base}: revisions ${g.firstRevision}-${g.lastRevision} are missing`,
          ),
        );
        assert.match(
          damaged.stdout,
          new RegExp(
            `FAILED cluster etcd, chain ${chain.base}: revisions ${lastSegment.manifest.firstRevision}-${last} are missing: the head says`,
          ),
        );
        assert.match(damaged.stdout, /log verification FAILED: 5 problem\(s\)/);

        // A test restore at a point past the hole is refused with one line naming what remains.
        assertOneLineError(
          await cli(
            ["verify", "--test-restore", "--revision", String(g.lastRevision), "--to", dest, "-i", identity],
            { timeoutMs: 240_000 },
          ),
          1,
          new RegExp(`cannot restore cluster etcd to revision ${g.lastRevision}`),
        );
        // One inside the flipped segment: the replay cannot read it, and says which segment.
        const inFlipped = await cli(
          [
            "verify",
            "--test-restore",
            "--revision",
            String(flipped!.manifest.lastRevision),
            "--to",
            dest,
            "-i",
            identity,
          ],
          { timeoutMs: 240_000 },
        );
        assert.equal(inFlipped.code, 1, `${inFlipped.stdout}${inFlipped.stderr}`);
        assert.ok(
          inFlipped.stderr.includes(flipped!.key),
          `the damaged segment is not named: ${inFlipped.stderr}`,
        );
        assert.doesNotMatch(inFlipped.stderr, /\n\s+at /, "a stack trace was printed");

        const damagedJson = JSON.parse(
          (await cli(["verify", "--log", "--to", dest, "-i", identity, "-o", "json"])).stdout,
        ) as { ok: boolean; log: { findings: { severity: string }[] } };
        assert.equal(damagedJson.ok, false);
        assert.equal(damagedJson.log.findings.filter((f) => f.severity === "error").length, 5);
      } finally {
        kv.close();
      }
    });
  });
}
