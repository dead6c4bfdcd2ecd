/**
 * The crash matrix: restore --to-file, restore --data-dir, verify --test-restore, restore-config and save-config
 * killed with SIGKILL at named points and seeded byte offsets (the ETCD_BACKUP_TEST_CRASH_AT hooks) and at
 * seeded random times. After each kill: nothing that looks complete but is not (an output exists under its final name only when whole),
 * no etcd left serving decrypted data; once the next run has passed, no work folder of plaintext left and no
 * process; and that rerun succeeds. The seed is printed on failure; rerun one with ETCD_BACKUP_TEST_SEED=<seed>,
 * and more random points per command with CRASH_RUNS=<n> (default 2).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, type CliResult, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env.CRASH_RUNS ?? 2);

/**
 * Where the kill lands: at a named point of the code or once so many stored bytes were read (both through
 * the ETCD_BACKUP_TEST_CRASH_AT hook), or after some milliseconds.
 */
type KillAt = { hook: string } | { afterMs: number };

function describeKill(k: KillAt): string {
  return "hook" in k ? `at ${k.hook}` : `after ${k.afterMs} ms`;
}

/** Secret-like values: random, so they do not compress away and reading the backup takes a while. */
async function fillRandom(
  etcd: EtcdServer,
  count: number,
  valueSize: number,
  random: SeededRandom,
): Promise<void> {
  const batches: string[] = [];
  for (let start = 0; start < count; start += 100) {
    const lines = [""];
    for (let i = start; i < Math.min(count, start + 100); i++) {
      const value = random.bytes((valueSize * 3) / 4);
      lines.push(
        `put /registry/secrets/default/s-${String(i).padStart(6, "0")} "${value.toString("base64")}"`,
      );
    }
    lines.push("", "", "");
    batches.push(lines.join("\n"));
  }
  for (let i = 0; i < batches.length; i += 4) {
    await Promise.all(batches.slice(i, i + 4).map((b) => etcd.ctl(["txn"], { input: b })));
  }
}

/** Work folders and folders older releases used, anywhere under `dir` (two levels deep). */
function workFolders(dir: string, depth = 2): string[] {
  const found: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (name.startsWith(".etcd-backup-work-registry-")) continue;
    if (/^\.?etcd-backup-(work|restore|test-restore|read|config)-/.test(name)) found.push(path);
    else if (depth > 1) found.push(...workFolders(path, depth - 1));
  }
  return found;
}

/** Live processes whose command line names something under `root` (a test etcd, its watchdog). */
function processesUnder(root: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      if (/\) [ZX] /.test(stat)) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " ");
      if (cmdline.includes(root)) found.push(`${pid}: ${cmdline.slice(0, 200)}`);
    } catch {}
  }
  return found;
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describe(`crash matrix: SIGKILL during restore, verify --test-restore, restore-config, save-config (seed ${SEED})`, () => {
  let root: string;
  let tmp: string;
  let store: string;
  let etcd: EtcdServer;
  let identity: string;
  let recipient: string;
  let kube: string;
  let plainSha256: string;
  let storedBytes: number;
  let env: NodeJS.ProcessEnv;
  const random = new SeededRandom(SEED);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), "etcd-backup-crash-"));
    // The CLI's temporary directory: private, so what a killed run leaves there is seen, and only ours.
    tmp = join(root, "tmp");
    store = join(root, "store");
    mkdirSync(tmp);
    mkdirSync(store);
    env = { TMPDIR: tmp };
    etcd = await startEtcd();
    // About 16 MB of Secret-like values: large enough that a kill lands inside the streaming, not only around it.
    await fillRandom(etcd, 8000, 2000, random);
    ({ identity, recipient } = await keygen(root));
    const saved = await runCli(
      ["save", "--endpoints", etcd.endpoint, "--to", store, "--cluster", "crash", "--recipient", recipient],
      { env },
    );
    assertOk(saved);
    const manifest = readdirSync(store).find((n) => n.endsWith(".snap.zst.age.json"))!;
    const m = JSON.parse(readFileSync(join(store, manifest), "utf8")) as {
      sha256: string;
      sizes: { stored: number };
    };
    plainSha256 = m.sha256;
    storedBytes = m.sizes.stored;
    kube = join(root, "etc", "kubernetes");
    mkdirSync(join(kube, "pki"), { recursive: true });
    for (let i = 0; i < 20; i++)
      writeFileSync(join(kube, "pki", `k${i}.key`), `PRIVATE ${i}\n`, { mode: 0o600 });
    assertOk(
      await runCli(
        ["save-config", "--path", kube, "--to", store, "--cluster", "cfg", "--recipient", recipient],
        {
          env,
        },
      ),
    );
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs the CLI and kills it with SIGKILL as `at` says; `killed` tells whether the kill came first. */
  async function runKilled(args: string[], at: KillAt): Promise<CliResult & { killed: boolean }> {
    let timer: NodeJS.Timeout | undefined;
    const r = await runCli(args, {
      env: { ...env, ...("hook" in at ? { ETCD_BACKUP_TEST_CRASH_AT: at.hook } : {}) },
      onSpawn: (pid) => {
        if ("afterMs" in at) {
          timer = setTimeout(() => {
            try {
              process.kill(pid, "SIGKILL");
            } catch {}
          }, at.afterMs);
        }
      },
    });
    clearTimeout(timer);
    return { ...r, killed: r.code === null };
  }

  /**
   * The named points, then RUNS seeded byte offsets into the stored backup (when the command reads one), then
   * RUNS seeded random times within a clean run's duration.
   */
  function schedule(hooks: string[], cleanMs: number, readBytes = storedBytes): KillAt[] {
    return [
      ...hooks.map((hook) => ({ hook })),
      ...(readBytes > 0
        ? Array.from({ length: RUNS }, () => ({ hook: `read:${Math.floor(random.next() * readBytes)}` }))
        : []),
      ...Array.from({ length: RUNS }, () => ({ afterMs: Math.round(100 + random.next() * cleanMs) })),
    ];
  }

  /** What a killed run left is private: its work folders and everything in them readable by the owner only. */
  function assertPrivate(dirs: string[], label: string): void {
    const walk = (path: string): void => {
      // The watchdog of a killed test restore removes its folder meanwhile: what is gone cannot leak.
      const info = lstatSync(path, { throwIfNoEntry: false });
      if (!info) return;
      assert.equal(
        info.mode & 0o077,
        0,
        `${label}: ${path} is mode ${(info.mode & 0o777).toString(8)} (seed ${SEED})`,
      );
      if (info.isDirectory()) {
        let names: string[] = [];
        try {
          names = readdirSync(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        for (const name of names) walk(join(path, name));
      }
    };
    for (const folder of dirs.flatMap((d) => workFolders(d))) walk(folder);
  }

  /** What must hold once the next run has passed: no plaintext folder, no process, in any directory used. */
  function assertNothingLeft(dirs: string[], label: string): void {
    const folders = dirs.flatMap((d) => workFolders(d));
    assert.deepEqual(folders, [], `${label}: work folders left (seed ${SEED})`);
    assert.deepEqual(processesUnder(root), [], `${label}: processes left (seed ${SEED})`);
  }

  function sha256Of(path: string): string {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  }

  async function timed(fn: () => Promise<CliResult>): Promise<number> {
    const t0 = Date.now();
    assertOk(await fn());
    return Date.now() - t0;
  }

  test("restore --to-file: the output exists only whole, and a rerun succeeds", async (t) => {
    const outDir = join(root, "to-file");
    mkdirSync(outDir);
    const out = join(outDir, "snapshot.db");
    const args = ["restore", "latest", "--to", store, "--identity", identity, "--to-file", out];
    const cleanMs = await timed(() => runCli(args, { env }));
    rmSync(out);
    for (const at of schedule(["to-file-written"], cleanMs)) {
      const label = `restore --to-file killed ${describeKill(at)}`;
      const r = await runKilled(args, at);
      t.diagnostic(`${label}: ${r.killed ? "killed" : `finished first (exit ${r.code})`}`);
      if ("hook" in at) assert.ok(r.killed, `${label}: the hook fired (${r.stderr})`);
      assertPrivate([outDir, tmp], label);
      if (existsSync(out))
        assert.equal(sha256Of(out), plainSha256, `${label}: a partial output (seed ${SEED})`);
      const again = await runCli([...args, "--force"], { env });
      assertOk(again);
      assert.equal(sha256Of(out), plainSha256, label);
      assertNothingLeft([outDir, tmp], label);
      rmSync(out);
    }
  });

  test("restore --data-dir: the data dir appears whole or not at all, and a rerun succeeds", async (t) => {
    const parent = join(root, "var-lib");
    mkdirSync(parent);
    const dataDir = join(parent, "etcd");
    const args = ["restore", "latest", "--to", store, "--identity", identity, "--data-dir", dataDir];
    const cleanMs = await timed(() => runCli(args, { env }));
    rmSync(dataDir, { recursive: true });
    for (const at of schedule(["data-dir-snapshot-written", "data-dir-staged"], cleanMs)) {
      const label = `restore --data-dir killed ${describeKill(at)}`;
      const r = await runKilled(args, at);
      t.diagnostic(`${label}: ${r.killed ? "killed" : `finished first (exit ${r.code})`}`);
      if ("hook" in at) assert.ok(r.killed, `${label}: the hook fired (${r.stderr})`);
      assertPrivate([parent, tmp], label);
      if (existsSync(dataDir)) {
        // Only a whole data dir is ever renamed into place.
        assert.ok(
          existsSync(join(dataDir, "member", "snap", "db")),
          `${label}: partial data dir (seed ${SEED})`,
        );
        assert.ok(existsSync(join(dataDir, "member", "wal")), `${label}: partial data dir (seed ${SEED})`);
        rmSync(dataDir, { recursive: true });
      }
      const again = await runCli(args, { env });
      assertOk(again);
      if (r.killed && "hook" in at) {
        assert.match(
          again.stderr,
          /etcd-backup: removed .*\.etcd-backup-work-restore-.* left by a killed run/,
          label,
        );
      }
      assert.ok(existsSync(join(dataDir, "member", "snap", "db")), label);
      assertNothingLeft([parent, tmp], label);
      rmSync(dataDir, { recursive: true });
    }
  });

  test("verify --test-restore: its etcd dies with it, and the next run removes what is left", async (t) => {
    const args = ["verify", "latest", "--to", store, "--identity", identity, "--test-restore"];
    const cleanMs = await timed(() => runCli(args, { env }));
    const hooks = [
      "test-restore-snapshot-written",
      "test-restore-data-dir-restored",
      "test-restore-etcd-started",
    ];
    for (const at of schedule(hooks, cleanMs)) {
      const label = `verify --test-restore killed ${describeKill(at)}`;
      const r = await runKilled(args, at);
      t.diagnostic(`${label}: ${r.killed ? "killed" : `finished first (exit ${r.code})`}`);
      if ("hook" in at) assert.ok(r.killed, `${label}: the hook fired (${r.stderr})`);
      assertPrivate([tmp], label);
      // Before any other run: the watchdog alone stops etcd (and itself) once its parent is gone.
      const gone = await waitFor(() => processesUnder(root).length === 0, 15_000);
      assert.ok(gone, `${label}: still running (seed ${SEED}): ${processesUnder(root).join("; ")}`);
      if (r.killed && "hook" in at && at.hook === "test-restore-etcd-started") {
        // The watchdog also removed the folder etcd ran on.
        assert.ok(
          await waitFor(() => workFolders(tmp).length === 0, 5000),
          `${label}: folder left (seed ${SEED})`,
        );
      }
      const again = await runCli(args, { env });
      assertOk(again);
      assert.match(again.stdout, /test restore passed/, label);
      assertNothingLeft([tmp], label);
    }
  });

  test("verify --test-restore interrupted by SIGINT says so, exits 1 and leaves nothing", async () => {
    const args = ["verify", "latest", "--to", store, "--identity", identity, "--test-restore"];
    let cli = 0;
    const running = runCli(args, { env, onSpawn: (pid) => (cli = pid) });
    // Interrupt once etcd runs: its watchdog records it in the work folder.
    const serving = await waitFor(
      () => workFolders(tmp).some((f) => existsSync(join(f, "server.json"))),
      60_000,
    );
    assert.ok(serving, "etcd was started");
    process.kill(cli, "SIGINT");
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stdout, /revision 0|passed|FAILED/, "no figures from a test that did not finish");
    assert.match(
      r.stderr,
      /^etcd-backup: test restore interrupted, nothing was tested: interrupted by SIGINT$/m,
    );
    assertNothingLeft([tmp], "verify --test-restore after SIGINT");
  });

  test("restore-config: the private keys' staging folder is swept, and a rerun succeeds", async (t) => {
    const target = join(root, "config-target");
    mkdirSync(target);
    const args = ["restore-config", "latest", "--to", store, "--identity", identity, "--target", target];
    const cleanMs = await timed(() => runCli(args, { env }));
    const archive = readdirSync(store).find((n) => n.endsWith(".config.tar.zst.age.json"))!;
    const archiveBytes = (
      JSON.parse(readFileSync(join(store, archive), "utf8")) as { sizes: { stored: number } }
    ).sizes.stored;
    for (const at of schedule(["config-unpacked"], cleanMs, archiveBytes)) {
      const label = `restore-config killed ${describeKill(at)}`;
      const r = await runKilled([...args, "--force"], at);
      t.diagnostic(`${label}: ${r.killed ? "killed" : `finished first (exit ${r.code})`}`);
      if ("hook" in at) {
        assert.ok(r.killed, `${label}: the hook fired (${r.stderr})`);
        assert.equal(
          workFolders(target).length,
          1,
          `${label}: the staging folder is there until the next run`,
        );
      }
      assertPrivate([target, tmp], label);
      const again = await runCli([...args, "--force"], { env });
      assertOk(again);
      for (let i = 0; i < 20; i++) {
        assert.equal(
          readFileSync(join(target, kube.slice(1), "pki", `k${i}.key`), "utf8"),
          `PRIVATE ${i}\n`,
          label,
        );
      }
      assertNothingLeft([target, tmp], label);
    }
  });

  test("save-config: nothing half-written survives a rerun and prune, and every archive left is whole", async (t) => {
    const args = ["save-config", "--path", kube, "--to", store, "--cluster", "cfg", "--recipient", recipient];
    // Names are per second: wait so a rerun never meets the name of the run before.
    const nextSecond = () => new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000)));
    await nextSecond();
    const cleanMs = await timed(() => runCli(args, { env }));
    for (const at of schedule([], Math.min(cleanMs, 1500), 0)) {
      const label = `save-config killed ${describeKill(at)}`;
      await nextSecond();
      const r = await runKilled(args, at);
      t.diagnostic(`${label}: ${r.killed ? "killed" : `finished first (exit ${r.code})`}`);
      await nextSecond();
      assertOk(await runCli(args, { env }));
      assertOk(
        await runCli(["prune", "--to", store, "--keep-last", "1000", "--incomplete-grace", "0s"], { env }),
      );
      const names = readdirSync(store);
      assert.deepEqual(
        names.filter((n) => n.endsWith(".pending") || n.startsWith(".etcd-backup-tmp-")),
        [],
        `${label}: leftovers after prune (seed ${SEED})`,
      );
      for (const archive of names.filter((n) => /\.config\.tar\.zst\.age$/.test(n))) {
        assert.ok(names.includes(`${archive}.json`), `${label}: ${archive} has no manifest (seed ${SEED})`);
      }
      assertNothingLeft([tmp], label);
    }
    // Every archive left restores.
    const target = join(root, "config-check");
    mkdirSync(target);
    assertOk(
      await runCli(["restore-config", "latest", "--to", store, "--identity", identity, "--target", target], {
        env,
      }),
    );
  });

  test("prune removes the work folder a killed restore left beside its target", async () => {
    const parent = join(root, "prune-sweep");
    mkdirSync(parent);
    const args = [
      "restore",
      "latest",
      "--to",
      store,
      "--identity",
      identity,
      "--data-dir",
      join(parent, "etcd"),
    ];
    const r = await runKilled(args, { hook: "data-dir-snapshot-written" });
    assert.ok(r.killed, r.stderr);
    assert.equal(workFolders(parent).length, 1);
    const pruned = await runCli(["prune", "--to", store, "--keep-last", "1000"], { env });
    assertOk(pruned);
    assert.match(pruned.stderr, /removed .*\.etcd-backup-work-restore-.* left by a killed run/);
    assertNothingLeft([parent, tmp], "prune after a killed restore --data-dir");
  });
});
