import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { formatStamp } from "../../src/catalog/names.ts";
import { LocalStore } from "../../src/store/local.ts";
import { age, plantBackup } from "../catalog/fixtures.ts";
import { type RealSnapshot, twoRealSnapshots } from "../catalog/real-snapshots.ts";
import { type CliResult, runCli } from "../fixtures/cli.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function failsWith(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(
    r.code,
    code,
    `expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
  );
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0]!, /^etcd-backup: /);
  assert.match(lines[0]!, pattern);
}

/** `time` written as talos-backup writes it from a pod whose zone is UTC+02:00. */
function plusTwo(time: Date): string {
  return `${new Date(time.getTime() + 2 * HOUR).toISOString().slice(0, 19)}+02:00`;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("list, latest and prune on a directory with the built CLI", () => {
  let work: string;
  let dir: string;
  let store: LocalStore;
  let a: RealSnapshot;
  let b: RealSnapshot;
  // Every planted time hangs off today's UTC midnight, so the expectations hold at any hour of the run.
  const midnight = new Date(Math.floor(Date.now() / DAY) * DAY);
  const day = (d: number, h: number) => new Date(midnight.getTime() - d * DAY + h * HOUR);
  const k: Record<string, string> = {};

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-catalog-"));
    dir = join(work, "backups");
    [a, b] = await twoRealSnapshots(work);
    rmSync(join(work, "a.db"));
    rmSync(join(work, "b.db"));
    store = new LocalStore(dir);
    await import("node:fs/promises").then((fs) => fs.mkdir(dir));
    for (let d = 1; d <= 6; d++) {
      k[`prod${d}early`] = await plantBackup(store, a.bytes, {
        cluster: "prod",
        time: day(d, 2),
        revision: a.revision,
      });
      k[`prod${d}late`] = await plantBackup(store, d === 1 ? b.bytes : a.bytes, {
        cluster: "prod",
        time: day(d, 14),
        compression: d === 1 ? "zstd" : "none",
        revision: d === 1 ? b.revision : a.revision,
      });
    }
    // talos-backup's: under its prefix folder, no manifest, its pod in UTC+02:00; one at the same instant as ours.
    k.talos13 = await plantBackup(store, a.bytes, {
      cluster: "prod",
      time: day(1, 13),
      key: `prod/prod-${plusTwo(day(1, 13))}.snap`,
      manifest: false,
    });
    k.talosTie = await plantBackup(store, a.bytes, {
      cluster: "prod",
      time: day(1, 14),
      key: `prod/prod-${plusTwo(day(1, 14))}.snap`,
      manifest: false,
    });
    for (const d of [2, 3])
      k[`stage${d}`] = await plantBackup(store, b.bytes, { cluster: "stage", time: day(d, 12) });
    k.invalid = await plantBackup(store, a.bytes, {
      cluster: "prod",
      time: day(8, 0),
      manifest: JSON.stringify({ format: 99, cluster: "prod" }),
    });
    // Ours, unfinished: the newest name of all, but never `latest`; old enough to be cleaned.
    k.crashed = await plantBackup(store, b.bytes, {
      cluster: "prod",
      time: day(1, 20),
      manifest: false,
      pending: true,
    });
    await age(store, k.crashed, day(2, 0));
    await age(store, `${k.crashed}.pending`, day(2, 0));
    // An upload that just started (marker only, fresh): never touched.
    k.running = await plantBackup(store, b.bytes, {
      cluster: "prod",
      time: midnight,
      manifest: false,
      pending: true,
      noObject: true,
    });
    k.oldTemp = `.etcd-backup-tmp-${formatStamp(day(5, 0)).replace(/^/, "prod-")}.snap.0123456789ab`;
    writeFileSync(join(dir, k.oldTemp), "partial");
    await age(store, k.oldTemp, day(5, 0));
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  test("list prints every backup with its state, newest first, times in UTC", async () => {
    const r = ok(await runCli(["list", "--to", dir]));
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(
      lines[0]!,
      /^NAME\s+TIME \(UTC\)\s+AGE\s+CLUSTER\s+REVISION\s+DB SIZE\s+STORED\s+COMPRESSION\s+ENCRYPTION\s+MANIFEST$/,
    );
    const row = (key: string) =>
      lines.find((l) => l.startsWith(`${key} `)) ?? assert.fail(`no row for ${key}`);
    assert.match(
      row(k.prod1late!),
      new RegExp(`${formatStamp(day(1, 14))}\\s+\\S+\\s+prod\\s+${b.revision}\\s.*zstd\\s+none\\s+yes$`),
    );
    assert.match(
      row(k.talos13!),
      new RegExp(`${formatStamp(day(1, 13))}\\s.*prod\\s+-\\s+-\\s.*none\\s+none\\s+no$`),
    );
    assert.match(row(k.crashed!), /INCOMPLETE$/);
    assert.match(row(`${k.running}`), /INCOMPLETE$/);
    assert.match(row(k.oldTemp!), /INCOMPLETE$/);
    assert.match(row(k.invalid!), /INVALID: manifest format 99 is newer than this tool understands/);
    // Newest first as instants: the talos-backup names sort by their UTC time, not their text.
    const order = lines.slice(1).map((l) => l.split(/\s+/)[0]);
    assert.ok(order.indexOf(k.prod1late) < order.indexOf(k.talos13!));
    assert.ok(order.indexOf(k.talos13!) < order.indexOf(k.prod1early!));
    assert.equal(lines.length - 1, 6 * 2 + 2 + 2 + 1 + 3);
  });

  test("list -o json with filters by cluster and time (RFC 3339 with offsets, dates and spans ago)", async () => {
    const json = async (...args: string[]) =>
      JSON.parse(ok(await runCli(["list", "--to", dir, "-o", "json", ...args])).stdout) as {
        name: string;
        state: string;
        hasManifest: boolean;
        usable: boolean;
        revision: number | null;
        time: string;
      }[];
    const all = await json();
    assert.equal(all.length, 20);
    const states = Object.fromEntries(
      ["complete", "unmanaged", "incomplete", "invalid"].map((s) => [
        s,
        all.filter((e) => e.state === s).length,
      ]),
    );
    assert.deepEqual(states, { complete: 14, unmanaged: 2, incomplete: 3, invalid: 1 });
    assert.deepEqual(
      all.filter((e) => e.state === "unmanaged").map((e) => [e.hasManifest, e.usable, e.revision]),
      [
        [false, true, null],
        [false, true, null],
      ],
    );
    assert.deepEqual(
      (await json("--cluster", "stage")).map((e) => e.name),
      [k.stage2, k.stage3],
    );
    // Since day 1 12:00 UTC written in -05:00, until day 1 14:00 as a UTC date-time: inclusive bounds.
    const since = `${new Date(day(1, 12).getTime() - 5 * HOUR).toISOString().slice(0, 19)}-05:00`;
    assert.deepEqual(
      (await json("--cluster", "prod", "--since", since, "--until", formatStamp(day(1, 14))))
        .map((e) => e.name)
        .sort(),
      [k.prod1late, k.talos13, k.talosTie].sort(),
    );
    // A span means that long ago: everything of the last 36 hours (day 1 from 12:00 on, and the fresh marker).
    const recent = await json("--since", "36h");
    for (const e of recent) assert.ok(Date.parse(e.time) >= Date.now() - 36 * HOUR - 60_000, e.name);
    assert.ok(recent.some((e) => e.name === k.running));
    // A UTC date as --until: up to its midnight.
    const untilDate = day(3, 0).toISOString().slice(0, 10);
    for (const e of await json("--until", untilDate))
      assert.ok(Date.parse(e.time) <= day(3, 0).getTime(), e.name);
    failsWith(
      await runCli(["list", "--to", dir, "--since", "last tuesday"]),
      2,
      /--since "last tuesday" is not a time \(use RFC 3339/,
    );
    failsWith(await runCli(["list", "--to", dir, "--until", "7"]), 2, /--until "7" is not a time/);
  });

  test("restore latest and --before pick usable backups by instant, never an incomplete one", async () => {
    const out = (name: string) => join(work, name);
    failsWith(
      await runCli(["restore", "latest", "--to", dir, "--to-file", out("x.db")]),
      1,
      /holds snapshot backups of 2 clusters \(prod, stage\); latest is ambiguous \(pass --cluster NAME\)/,
    );
    // The newest name is the crashed upload; the next is a tie between ours (manifest) and talos-backup's.
    ok(await runCli(["restore", "latest", "--cluster", "prod", "--to", dir, "--to-file", out("latest.db")]));
    assert.equal(sha(readFileSync(out("latest.db"))), sha(b.bytes));
    // Strictly before day 1 14:00 UTC, given in +02:00: talos-backup's 13:00 (a plain .snap, no manifest).
    ok(
      await runCli([
        "restore",
        "latest",
        "--cluster",
        "prod",
        "--before",
        plusTwo(day(1, 14)),
        "--to",
        dir,
        "--to-file",
        out("before.db"),
      ]),
    );
    assert.equal(sha(readFileSync(out("before.db"))), sha(a.bytes));
    // A span means that long ago: half past 13:00 on day 1 picks talos-backup's 13:00 again.
    const span = `${Math.ceil((Date.now() - day(1, 13.5).getTime()) / 1000)}s`;
    ok(
      await runCli([
        "restore",
        "latest",
        "--cluster",
        "prod",
        "--before",
        span,
        "--to",
        dir,
        "--to-file",
        out("span.db"),
      ]),
    );
    assert.equal(sha(readFileSync(out("span.db"))), sha(a.bytes));
    // A time without a zone would be read in the machine's local time: refused.
    failsWith(
      await runCli([
        "restore",
        "latest",
        "--cluster",
        "prod",
        "--before",
        "2026-01-01T00:00:00",
        "--to",
        dir,
        "--to-file",
        out("y.db"),
      ]),
      2,
      /--before "2026-01-01T00:00:00" is not a time/,
    );
    // By name, a talos-backup name with an offset.
    ok(await runCli(["restore", k.talosTie!.split("/")[1]!, "--to", dir, "--to-file", out("byname.db")]));
    assert.equal(statSync(out("byname.db")).size, a.bytes.length);
    failsWith(
      await runCli(["restore", k.crashed!, "--to", dir, "--to-file", out("crashed.db")]),
      1,
      /is incomplete: object stored but its manifest was never written/,
    );
  });

  test("prune refuses to run without a keep rule or with a bad one", async () => {
    failsWith(
      await runCli(["prune", "--to", dir]),
      2,
      /no keep rule given: prune will not guess what to keep/,
    );
    failsWith(
      await runCli(["prune", "--to", dir, "--keep-last", "0"]),
      2,
      /--keep-last "0" is not a whole number/,
    );
    failsWith(
      await runCli(["prune", "--to", dir, "--keep-within", "7"]),
      2,
      /--keep-within "7" is not a span/,
    );
    failsWith(
      await runCli(["prune", "--to", dir, "--keep-daily", "3", "--incomplete-grace", "soon"]),
      2,
      /--incomplete-grace "soon"/,
    );
  });

  test("prune --dry-run says what goes and why; the real run deletes exactly that", async () => {
    const before = readdirSync(dir).length + readdirSync(join(dir, "prod")).length;
    const dry = ok(await runCli(["prune", "--to", dir, "--keep-daily", "3", "--dry-run", "-o", "json"]));
    const plan = JSON.parse(dry.stdout) as {
      dryRun: boolean;
      backups: { name: string; action: string; reasons: { rule: string; period?: string }[] }[];
      invalid: { name: string }[];
      leftovers: { name: string; action: string; keys: string[] }[];
    };
    assert.equal(plan.dryRun, true);
    assert.equal(
      readdirSync(dir).length + readdirSync(join(dir, "prod")).length,
      before,
      "dry run deleted nothing",
    );
    const kept = plan.backups.filter((x) => x.action === "keep").map((x) => x.name);
    assert.deepEqual(kept.sort(), [k.prod1late, k.prod2late, k.prod3late, k.stage2, k.stage3].sort());
    const p1 = plan.backups.find((x) => x.name === k.prod1late)!;
    assert.deepEqual(p1.reasons, [
      { rule: "newest" },
      { rule: "daily", period: day(1, 0).toISOString().slice(0, 10) },
    ]);
    const deleted = plan.backups.filter((x) => x.action === "delete").map((x) => x.name);
    assert.deepEqual(
      deleted.sort(),
      [
        k.prod1early,
        k.talos13,
        k.talosTie,
        k.prod2early,
        k.prod3early,
        k.prod4early,
        k.prod4late,
        k.prod5early,
        k.prod5late,
        k.prod6early,
        k.prod6late,
      ].sort(),
    );
    assert.deepEqual(
      plan.invalid.map((x) => x.name),
      [k.invalid],
    );
    assert.deepEqual(
      plan.leftovers.map((l) => `${l.action} ${l.name}`).sort(),
      [`delete ${k.crashed}`, `delete ${k.oldTemp}`, `keep ${k.running}`].sort(),
    );

    const table = ok(await runCli(["prune", "--to", dir, "--keep-daily", "3", "--dry-run"]));
    assert.match(
      table.stdout,
      new RegExp(`^would delete\\s+${k.prod4late!.replace(/[.+]/g, "\\$&")}\\s`, "m"),
    );
    assert.match(
      table.stdout,
      new RegExp(`^keep\\s+${k.prod2late!.replace(/[.+]/g, "\\$&")}\\s.*daily \\d{4}-\\d{2}-\\d{2}$`, "m"),
    );
    assert.match(table.stdout, /^keep\s+.*INVALID\s+invalid, left for a person to check/m);
    assert.match(
      table.stdout,
      /^dry run: would delete 11 backup\(s\) and 2 leftover\(s\), .*; nothing was deleted$/m,
    );

    const real = ok(await runCli(["prune", "--to", dir, "--keep-daily", "3"]));
    assert.match(real.stdout, /^deleted 11 backup\(s\) and 2 leftover\(s\), .* freed$/m);
    const left = [
      ...readdirSync(dir).filter((f) => f !== "prod"),
      ...readdirSync(join(dir, "prod")).map((f) => `prod/${f}`),
    ].sort();
    const expected = [
      ...[k.prod1late, k.prod2late, k.prod3late, k.stage2, k.stage3].flatMap((x) => [x!, `${x}.json`]),
      k.invalid!,
      `${k.invalid}.json`,
      `${k.running}.pending`,
    ].sort();
    assert.deepEqual(left, expected);

    // Nothing more goes on a second run, and `latest` is still ours.
    const again = JSON.parse(
      ok(await runCli(["prune", "--to", dir, "--keep-daily", "3", "-o", "json"])).stdout,
    );
    assert.equal(again.backups.filter((x: { action: string }) => x.action === "delete").length, 0);
    ok(
      await runCli([
        "restore",
        "latest",
        "--cluster",
        "prod",
        "--to",
        dir,
        "--to-file",
        join(work, "after.db"),
      ]),
    );
    assert.equal(sha(readFileSync(join(work, "after.db"))), sha(b.bytes));
  });
});
