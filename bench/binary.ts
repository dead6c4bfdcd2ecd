/**
 * What shipping as a binary and an image costs: sizes (binary, image archive and layer, against the npm
 * package's production dependencies), start-up time (`--version`, and `list` of an empty directory, which loads
 * the command modules) and peak RSS and wall time of `save` (etcd → zstd + age → directory) from a Kubernetes-
 * shaped etcd of --size MB, through the binary (which carries etcd-backup's V8 options, src/cli/v8-flags.ts),
 * the npm launcher (bin/etcd-backup.js, which re-executes Node with them) and bare `node dist/cli/main.js` on
 * the pinned Node 24 (no options: what the flags are worth). Every run is its own process under /usr/bin/time; start-up is the
 * median of --startup-runs, save the median wall and the largest peak RSS of --runs.
 *
 *   npm run build && node_modules/.bin/node bench/binary.ts [--size 200] [--runs 3] [--startup-runs 15]
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { binaryPath, buildBinary } from "../scripts/build-binary.ts";
import { etcdFromSnapshot, k8sSnapshot } from "./k8s-data.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const MiB = 2 ** 20;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    runs: { type: "string", default: "3" },
    "startup-runs": { type: "string", default: "15" },
  },
});
const runs = Number(values.runs);
const startupRuns = Number(values["startup-runs"]);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

interface Timed {
  wall: number;
  cpu: number;
  rssKiB: number;
  stdout: string;
}

/** One process under /usr/bin/time: wall seconds, user+system CPU, peak RSS. */
async function timed(cmd: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const r = await run("/usr/bin/time", ["-f", "TIME %e %U %S %M", ...cmd], { env, maxBuffer: 1 << 26 });
  const m = /TIME (\S+) (\S+) (\S+) (\d+)\s*$/.exec(r.stderr);
  if (!m) throw new Error(`no time output from ${cmd.join(" ")}: ${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssKiB: Number(m[4]), stdout: r.stdout };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const node24 = process.execPath;
const cli = join(ROOT, "dist", "cli", "main.js");
if (!existsSync(cli)) throw new Error("dist/cli/main.js is missing: run npm run build first");
const binary = await buildBinary("amd64", { log });
const work = mkdtempSync(join(tmpdir(), "etcd-backup-bench-binary-"));
const env = (nodeOptions: string): NodeJS.ProcessEnv => ({
  PATH: "/usr/bin:/bin",
  HOME: work,
  NODE_OPTIONS: nodeOptions,
});

const variants: Array<{ name: string; cmd: string[]; nodeOptions: string }> = [
  { name: "binary (its own V8 options)", cmd: [binary.path], nodeOptions: "" },
  {
    name: "node24 bin/etcd-backup.js (launcher, its own V8 options)",
    cmd: [node24, join(ROOT, "bin", "etcd-backup.js")],
    nodeOptions: "",
  },
  { name: "node24 dist/cli/main.js (no V8 options)", cmd: [node24, cli], nodeOptions: "" },
];

try {
  // Sizes.
  const out: string[] = [];
  const archive = readdirSync(join(ROOT, "dist-bin")).find((f) => f.endsWith(".oci.tar"));
  const prodDeps = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .filter((p) => p.includes("node_modules"));
  const prodBytes = Number(
    execFileSync("du", ["-sb", "-c", ...prodDeps], { encoding: "utf8" })
      .trim()
      .split("\n")
      .at(-1)!
      .split("\t")[0],
  );
  out.push("| what | size |", "|---|---:|");
  out.push(
    `| standalone binary (linux-amd64, stripped Node 24 + the bundled CLI) | ${(binary.bytes / MiB).toFixed(1)} MiB |`,
  );
  if (archive) {
    const bytes = statSync(join(ROOT, "dist-bin", archive)).size;
    out.push(`| image archive ${archive} (one gzip layer) | ${(bytes / MiB).toFixed(1)} MiB |`);
  }
  out.push(
    `| npm package's production dependencies (node_modules, what the old image added to node:24-slim) | ${(prodBytes / MiB).toFixed(1)} MiB |`,
  );

  // Start-up.
  const empty = join(work, "empty");
  mkdirSync(empty);
  const startup: string[] = [
    "| start-up | wall s (median of " + startupRuns + ") | peak RSS MiB |",
    "|---|---:|---:|",
  ];
  const startupCases: Array<{ name: string; cmd: string[] }> = [
    { name: "node -e 0 (Node 24, nothing loaded)", cmd: [node24, "-e", "0"] },
    { name: "binary --version", cmd: [binary.path, "--version"] },
    { name: "node24 dist/cli/main.js --version", cmd: [node24, cli, "--version"] },
    {
      name: "node24 bin/etcd-backup.js --version (the npm launcher)",
      cmd: [node24, join(ROOT, "bin", "etcd-backup.js"), "--version"],
    },
    { name: "binary list --to EMPTY", cmd: [binary.path, "list", "--to", empty] },
    { name: "node24 dist/cli/main.js list --to EMPTY", cmd: [node24, cli, "list", "--to", empty] },
  ];
  for (const c of startupCases) {
    const results: Timed[] = [];
    for (let i = 0; i < startupRuns; i++) results.push(await timed(c.cmd, env("")));
    startup.push(
      `| ${c.name} | ${median(results.map((r) => r.wall)).toFixed(2)} | ${(Math.max(...results.map((r) => r.rssKiB)) / 1024).toFixed(0)} |`,
    );
  }

  // save.
  const snapshot = await k8sSnapshot(Number(values.size), log);
  const snapshotMB = statSync(snapshot).size / 1e6;
  const etcd = await etcdFromSnapshot(snapshot);
  const saveRows: string[] = [
    `| save → dir, zstd + age (${snapshotMB.toFixed(1)} MB snapshot) | wall s (median of ${runs}) | cpu s | peak RSS MiB (largest) |`,
    "|---|---:|---:|---:|",
  ];
  try {
    const key = join(work, "key.txt");
    const keygen = await run(binary.path, ["keygen", "-o", key], { env: env("") });
    const recipient = /Public key: (age1\w+)/.exec(keygen.stderr)![1]!;
    const results = new Map<string, Timed[]>();
    for (let i = 0; i < runs; i++) {
      // Interleaved, so load from other users of the machine falls on every variant alike.
      for (const v of variants) {
        const dir = join(work, `save-${i}-${results.size}-${Math.random().toString(36).slice(2)}`);
        mkdirSync(dir);
        const t = await timed(
          [
            ...v.cmd,
            "save",
            "--endpoints",
            etcd.endpoint,
            "--to",
            dir,
            "--cluster",
            "bench",
            "--recipient",
            recipient,
          ],
          env(v.nodeOptions),
        );
        rmSync(dir, { recursive: true, force: true });
        results.set(v.name, [...(results.get(v.name) ?? []), t]);
        log(`save ${v.name}: ${t.wall} s, ${(t.rssKiB / 1024).toFixed(0)} MiB`);
      }
    }
    for (const v of variants) {
      const rs = results.get(v.name)!;
      saveRows.push(
        `| ${v.name} | ${median(rs.map((r) => r.wall)).toFixed(2)} | ${median(rs.map((r) => r.cpu)).toFixed(2)} | ${(Math.max(...rs.map((r) => r.rssKiB)) / 1024).toFixed(0)} |`,
      );
    }
  } finally {
    await etcd.destroy();
  }
  process.stdout.write(`${[...out, "", ...startup, "", ...saveRows].join("\n")}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
  log(`binary: ${binaryPath("amd64")}`);
}
