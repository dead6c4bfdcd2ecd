/**
 * The npm package's `etcd-backup` command (bin/etcd-backup.js): on a Node without zstd it says in one line what
 * is needed, what was found and what to use instead, before anything of the CLI is loaded; on Node 24 it runs
 * the CLI with its exit codes. Run under the machine's own old Node (Debian's Node 20) and the pinned Node 24.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { relaunchArgv, V8_FLAGS } from "../../src/cli/v8-flags.ts";
import { VERSION } from "../../src/version.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const LAUNCHER = join(ROOT, "bin", "etcd-backup.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function launch(node: string, args: string[], options: { nodeArgs?: string[]; launcher?: string } = {}): Run {
  const r = spawnSync(node, [...(options.nodeArgs ?? []), options.launcher ?? LAUNCHER, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLine(r: Run, pattern: RegExp): string {
  assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^etcd-backup: /);
  assert.match(lines[0]!, pattern);
  return lines[0]!;
}

/** A Node older than 22.15 on this machine (Debian's /usr/bin/node is 20), outside node_modules. */
function oldNode(): { path: string; version: string } | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"];
  for (const dir of dirs) {
    if (!dir || dir.includes("node_modules")) continue;
    const path = join(dir, "node");
    try {
      accessSync(path, constants.X_OK);
    } catch {
      continue;
    }
    const version = execFileSync(path, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    const [major, minor] = version.split(".").map(Number) as [number, number];
    if (major < 22 || (major === 22 && minor < 15)) return { path, version };
  }
  return undefined;
}

describe("bin/etcd-backup.js, the npm package's command", () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-launcher-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const old = oldNode();
  test(`on the machine's old Node (${old ? `${old.version} at ${old.path}` : "none found"}): one line, exit 1`, {
    skip: old ? false : "no Node older than 22.15 on this machine",
  }, () => {
    for (const args of [["--version"], ["save", "--to", work], []]) {
      const line = assertOneLine(launch(old!.path, args), /unsupported runtime/);
      assert.ok(line.includes("needs Node.js 22.15 or newer with zlib zstd"), line);
      assert.ok(line.includes(`found Node.js ${old!.version} (`), line);
      assert.match(line, /standalone binary/);
      assert.match(line, /container image/);
    }
  });

  test("on Node 24 it is the CLI: --version, a usage error (exit 2), a failure (exit 1)", () => {
    const version = launch(process.execPath, ["--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), VERSION);
    const usage = launch(process.execPath, ["frobnicate"]);
    assert.equal(usage.code, 2, usage.stderr);
    const failed = launch(process.execPath, ["list", "--to", join(work, "missing")]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /^etcd-backup: directory .*missing does not exist/);
  });

  test("a Node that is recent enough but lacks zlib zstd is named as such", () => {
    const preload = join(work, "no-zstd.cjs");
    writeFileSync(preload, 'delete require("node:zlib").createZstdDecompress;\n');
    const line = assertOneLine(
      launch(process.execPath, ["--version"], { nodeArgs: ["--require", preload] }),
      /unsupported runtime/,
    );
    assert.ok(line.includes(`found Node.js ${process.versions.node} without zlib zstd`), line);
  });

  test("a package without its built CLI says so in one line", () => {
    const bin = join(work, "pkg", "bin");
    mkdirSync(bin, { recursive: true });
    copyFileSync(LAUNCHER, join(bin, "etcd-backup.js"));
    writeFileSync(join(work, "pkg", "package.json"), '{"type":"module"}\n');
    assertOneLine(
      launch(process.execPath, ["--version"], { launcher: join(bin, "etcd-backup.js") }),
      /the installation is incomplete: .*dist\/cli\/[a-z0-9-]+\.js.*\(reinstall the package/,
    );
  });

  test("a streaming command runs with etcd-backup's V8 flags, in the same process; others and the user's own choice are left alone", () => {
    // The preload prints, as the process exits, its pid and its Node options: after the in-place re-execution
    // it runs again (it is one of the kept options) and is the only one to reach exit.
    const preload = join(work, "show-flags.cjs");
    writeFileSync(
      preload,
      'process.on("exit", () => process.stderr.write("flags " + process.pid + " " + JSON.stringify(process.execArgv) + "\\n"));\n',
    );
    const run = (args: string[], nodeArgs: string[] = []) => {
      const r = launch(process.execPath, args, { nodeArgs: [...nodeArgs, "--require", preload] });
      const lines = r.stderr.split("\n").filter((l) => l.startsWith("flags "));
      assert.equal(lines.length, 1, `one process reached exit:\n${r.stderr}`);
      return JSON.parse(lines[0]!.split(" ").slice(2).join(" ")) as string[];
    };
    const save = ["save", "--endpoints", "127.0.0.1:1", "--dial-timeout", "1s", "--no-encrypt", "--to", work];
    const flags = run(save);
    for (const f of V8_FLAGS) assert.ok(flags.includes(f), `${f} in ${JSON.stringify(flags)}`);
    assert.ok(flags.includes("--require"), "the user's own Node options are kept");
    assert.ok(!run(["--version"]).some((f) => V8_FLAGS.includes(f)), "--version is not re-executed");
    const own = run(save, ["--max-semi-space-size=4"]);
    assert.ok(
      own.includes("--max-semi-space-size=4") && !own.some((f) => V8_FLAGS.includes(f)),
      JSON.stringify(own),
    );
  });

  test("relaunchArgv: only streaming commands, only flags not given, the user's NODE_OPTIONS win", () => {
    const argv = ["/n", "/bin/etcd-backup", "--debug", "save", "--to", "d"];
    assert.deepEqual(relaunchArgv("/n", argv, ["--x"], undefined), [
      "/n",
      ...V8_FLAGS,
      "--x",
      "/bin/etcd-backup",
      "--debug",
      "save",
      "--to",
      "d",
    ]);
    assert.equal(relaunchArgv("/n", ["/n", "/b", "status", "f"], [], undefined), null);
    assert.equal(relaunchArgv("/n", ["/n", "/b", "--help"], [], undefined), null);
    assert.equal(relaunchArgv("/n", argv, [], "--max_semi_space_size=8"), null);
    assert.equal(relaunchArgv("/n", argv, [...V8_FLAGS], undefined), null);
  });

  test("the npm package holds the launcher and the built CLI, and points its bin at the launcher", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    assert.deepEqual(pkg.bin, { "etcd-backup": "bin/etcd-backup.js" });
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const files = (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    assert.ok(files.includes("bin/etcd-backup.js"));
    assert.ok(files.includes("dist/cli/main.js"), "dist/ is built by npm test before this runs");
    assert.ok(files.includes("package.json") && files.includes("README.md"));
    const strays = files.filter(
      (f) => !/^(bin\/etcd-backup\.js|dist\/.+\.js|package\.json|README\.md|LICENSE)$/.test(f),
    );
    assert.deepEqual(strays, [], "nothing but the launcher, the built CLI and the package's documents");
  });
});
