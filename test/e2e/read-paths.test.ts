/**
 * Every way a snapshot reaches the reader gives the same bytes for every key, equal to what a real etcd
 * serves from it: the plain file, a multi-frame `.zst` (ours), a single-frame `.zst` (the zstd CLI), `.zst.age`
 * and `.age` (ours and the age CLI), and stored backups in a directory and on S3, by name and as `latest`.
 * Each is read through the function behind get/inspect/diff (openProvenSnapshotInput), every key compared,
 * and through the built CLI's `get -o raw` for the biggest and a small key, byte for byte.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openDb, openProvenSnapshotInput, type SnapshotInputFlags } from "../../src/cli/snapshot-input.ts";
import { getObjects } from "../../src/snapshot/get.ts";
import { assertOk, CLI, keygen, runCli } from "../fixtures/cli.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { startCorpusEtcd } from "../snapshot/corpus.ts";
import { type Dump, saveSnapshot, snapshotTruth, writeShape } from "../snapshot/differential.ts";

const seed = testSeed(424242);
const where = `(seed ${seed}; rerun with ETCD_BACKUP_TEST_SEED=${seed})`;

/** Runs the CLI and returns its stdout as bytes (values may be binary). */
function cliBytes(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out: Buffer.concat(out), err }));
  });
}

describe(`every read path gives etcd's bytes for every key ${where}`, () => {
  let work: string;
  let snapshot: string;
  let empty: string;
  let truth: Dump;
  let identity: string;
  let recipient: string;
  let s3: TestS3Server;
  let keys: string[];
  const s3Env = (): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  });
  /** [label, argument, flags, env] for each path. */
  const paths: [string, string, SnapshotInputFlags, NodeJS.ProcessEnv][] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-read-paths-"));
    const etcd = await startCorpusEtcd();
    try {
      empty = await saveSnapshot(etcd, work, "empty");
      const rng = new SeededRandom(seed);
      let n = 0;
      // ~8 MB of plain snapshot: several 2 MiB zstd frames, values across frame and window boundaries.
      await writeShape(etcd, rng, {
        keys: 5000,
        size: () => (n++ % 50 === 49 ? rng.int(38_000, 300_000) : rng.int(0, 1100)),
        leases: 1,
        rewrites: 2,
        deletes: 20,
      });
      snapshot = await saveSnapshot(etcd, work, "plain");
    } finally {
      await etcd.destroy();
    }
    truth = await snapshotTruth(snapshot);
    keys = [...truth.keys.keys()].map((k) => Buffer.from(k, "latin1").toString("utf8"));
    ({ identity, recipient } = await keygen(work));
    s3 = await startS3Server();
    await s3.createBucket("backups");

    const save = async (to: string, extra: string[], env: NodeJS.ProcessEnv = {}) => {
      if (!to.startsWith("s3://")) mkdirSync(to, { recursive: true });
      assertOk(
        await runCli(["save", "--from-file", snapshot, "--to", to, "--cluster", "c", ...extra], { env }),
      );
    };
    const onlyFile = (dir: string, suffix: string) =>
      join(dir, readdirSync(dir).find((f) => f.endsWith(suffix))!);

    paths.push(["plain file", snapshot, {}, {}]);
    const zstdDir = join(work, "zst");
    await save(zstdDir, ["--no-encrypt"]);
    const ourZst = onlyFile(zstdDir, ".snap.zst");
    const frames = execFileSync("zstd", ["-lv", ourZst]).toString();
    assert.match(frames, /# Zstandard Frames: *([3-9]|\d\d)/, `expected several frames:\n${frames}`);
    paths.push(["our multi-frame .zst file", ourZst, {}, {}]);
    paths.push(["backup .snap.zst in a directory, latest", "latest", { to: zstdDir }, {}]);
    const cliZst = join(work, "cli.db.zst");
    execFileSync("zstd", ["-q", "-19", snapshot, "-o", cliZst]);
    paths.push(["zstd CLI single-frame .zst file", cliZst, {}, {}]);

    const ageDir = join(work, "age");
    await save(ageDir, ["--recipient", recipient]);
    const ourZstAge = onlyFile(ageDir, ".snap.zst.age");
    paths.push(["our .zst.age file", ourZstAge, { identity }, {}]);
    const name = readdirSync(ageDir).find((f) => f.endsWith(".snap.zst.age"))!;
    paths.push([`backup ${name} by name`, name, { to: ageDir, identity }, {}]);

    const plainAgeDir = join(work, "age-plain");
    await save(plainAgeDir, ["--compress", "none", "--recipient", recipient]);
    paths.push(["our .snap.age file (no compression)", onlyFile(plainAgeDir, ".snap.age"), { identity }, {}]);
    const cliAge = join(work, "cli.db.age");
    execFileSync("age", ["-r", recipient, "-o", cliAge, snapshot]);
    paths.push(["age CLI .age file", cliAge, { identity }, {}]);

    await save("s3://backups/prod", ["--recipient", recipient], s3Env());
    paths.push(["S3 backup, latest", "latest", { to: "s3://backups/prod", identity }, s3Env()]);
    const listed = await runCli(["list", "--to", "s3://backups/prod", "-o", "json"], { env: s3Env() });
    assertOk(listed);
    const s3Name = (JSON.parse(listed.stdout) as { name?: string; key?: string }[]).map(
      (b) => b.name ?? b.key,
    )[0]!;
    paths.push([`S3 backup ${s3Name} by name`, s3Name, { to: "s3://backups/prod", identity }, s3Env()]);
  });

  after(async () => {
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("each path: every key through get's library functions equals etcd's value", async () => {
    assert.equal(paths.length, 10);
    const saved = { ...process.env };
    try {
      for (const [label, arg, flags, env] of paths) {
        Object.assign(process.env, env);
        const input = await openProvenSnapshotInput(arg, flags, undefined, (line) =>
          assert.fail(`${label}: unexpected warning ${line}`),
        );
        try {
          const db = openDb(input.snapshot);
          try {
            const found = getObjects(db, keys);
            let differing = 0;
            for (const key of keys) {
              const want = truth.keys.get(Buffer.from(key).toString("latin1"))!.value;
              if (!found.get(key)?.value.equals(want)) differing++;
            }
            assert.equal(differing, 0, `${label}: ${differing} of ${keys.length} keys differ ${where}`);
          } finally {
            db.close();
          }
        } finally {
          await input.snapshot.dispose();
        }
      }
    } finally {
      process.env = saved;
    }
  });

  test("each path: `get -o raw` prints the biggest and a small value byte for byte", async () => {
    const bySize = [...truth.keys].sort((a, b) => b[1].value.length - a[1].value.length);
    const picks = [bySize[0]!, bySize[Math.floor(bySize.length / 2)]!];
    for (const [label, arg, flags, env] of paths) {
      for (const [name, kv] of picks) {
        const key = Buffer.from(name, "latin1").toString("utf8");
        const args = ["get", arg, key, "-o", "raw"];
        if (flags.to) args.push("--to", flags.to);
        if (flags.identity) args.push("-i", String(flags.identity));
        const r = await cliBytes(args, env);
        assert.equal(r.code, 0, `${label}: ${r.err}`);
        assert.ok(r.out.equals(kv.value), `${label}: ${key} (${kv.value.length} bytes) differs ${where}`);
      }
    }
  });

  test("`diff | head -1` ends quietly when the reader closes the pipe (no EPIPE stack trace)", () => {
    const out = execFileSync("sh", [
      "-c",
      `"${process.execPath}" "${CLI}" diff "${empty}" "${snapshot}" 2>"${work}/diff.err" | head -1; cat "${work}/diff.err"`,
    ]).toString();
    const [first, ...rest] = out.split("\n");
    assert.match(first!, /^revision \d+ -> \d+$/);
    assert.doesNotMatch(rest.join("\n"), /EPIPE|Error|at /, out);
  });
});
