/**
 * Before and after, against etcdutl, in one run (issue 22, goals 2 and 3): `status` and `save` of this
 * checkout against another build of etcd-backup (the "before"), with `etcdutl snapshot status` 3.6 beside
 * them, on the same snapshots of both bench shapes (bench/k8s-data.ts: Kubernetes-shaped, and large values).
 *
 *   npm run build && node bench/speed.ts --before-ref main          # builds main in a temp directory first
 *   node bench/speed.ts --before /path/to/checkout                  # a checkout with `npm run build` done
 *   node bench/speed.ts --size 200 --runs 5 --shapes k8s,large-values --only status
 *
 * Every command runs in its own process under `/usr/bin/time`: wall time, user+system CPU and peak RSS come
 * from there. Ours runs as users run it, through the npm launcher (bin/etcd-backup.js) with default settings.
 * Figures are the best of --runs runs with the median beside; the cases are interleaved run by run so that
 * load from other users of the machine spreads over all of them, and the 1-minute load average is printed
 * with each figure. On a shared machine CPU time moves less with load than wall time: both are given. save
 * reads the snapshot file (`--from-file`) and writes zstd + age to a directory; etcdutl has no such command,
 * so save compares before with after only. Every status output must equal etcdutl's, or the bench fails.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { benchSnapshot, SHAPES, type Shape } from "./k8s-data.ts";

const exec = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;
const NODE = process.execPath;
const ETCDUTL = join(ROOT, ".peers", "etcd-3.6.16", "bin", "etcdutl");

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    "before-ref": { type: "string" },
    size: { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
    shapes: { type: "string", default: SHAPES.join(",") },
    only: { type: "string", default: "status,save" },
  },
});

const log = (s: string) => process.stderr.write(`${s}\n`);
const runs = Number(values.runs);
const sizeMB = Number(values.size);
const shapes = values.shapes.split(",").filter(Boolean) as Shape[];
for (const s of shapes) if (!SHAPES.includes(s)) throw new Error(`--shapes: unknown shape ${s}`);
const groups = new Set(values.only.split(","));
if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) throw new Error("run `npm run build` first");
if (!existsSync(ETCDUTL)) throw new Error(`${ETCDUTL} is missing (scripts/install-peers.sh)`);

const work = mkdtempSync(join(tmpdir(), "etcd-backup-speed-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

/** A build of another revision: `git archive` of it in the work directory, this checkout's node_modules. */
async function buildRef(ref: string): Promise<string> {
  const dir = join(work, "before");
  log(`building ${ref} in ${dir}`);
  await exec("sh", ["-c", `mkdir -p "${dir}" && git -C "${ROOT}" archive "${ref}" | tar -x -C "${dir}"`]);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  await exec(NODE, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], {
    cwd: dir,
  });
  return dir;
}

const beforeDir = values.before ?? (values["before-ref"] ? await buildRef(values["before-ref"]) : undefined);
const builds: [name: string, dir: string][] = [
  ...(beforeDir ? ([["before", beforeDir]] as [string, string][]) : []),
  ["after", ROOT],
];

interface Usage {
  wall: number;
  cpu: number;
  rssMiB: number;
  load: number;
  stdout: string;
}

/** Runs `cmd` under /usr/bin/time; fails on a non-zero exit. */
async function timed(cmd: string, args: string[]): Promise<Usage> {
  const load = loadavg()[0]!;
  return await new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-f", "TIME %e %U %S %M", cmd, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) => {
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)\s*$/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.slice(-1500)}`));
      resolve({
        wall: Number(m[1]),
        cpu: Number(m[2]) + Number(m[3]),
        rssMiB: Number(m[4]) / 1024,
        load,
        stdout: out,
      });
    });
  });
}

interface Case {
  group: "status" | "save";
  name: string;
  run(): Promise<Usage>;
}

const keyFile = join(work, "age-key.txt");
await exec("/usr/bin/age-keygen", ["-o", keyFile]);
const recipient = (await exec("/usr/bin/age-keygen", ["-y", keyFile])).stdout.trim();

const best = (xs: number[]) => Math.min(...xs);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let failed = false;

for (const shape of shapes) {
  const file = await benchSnapshot(shape, sizeMB, log);
  const cases: Case[] = [];
  if (groups.has("status")) {
    cases.push({
      group: "status",
      name: "etcdutl 3.6 snapshot status -w json",
      run: () => timed(ETCDUTL, ["snapshot", "status", "-w", "json", file]),
    });
    for (const [name, dir] of builds)
      cases.push({
        group: "status",
        name: `etcd-backup status -w json (${name})`,
        run: () => timed(NODE, [join(dir, "bin", "etcd-backup.js"), "status", "-w", "json", file]),
      });
  }
  if (groups.has("save")) {
    for (const [name, dir] of builds)
      cases.push({
        group: "save",
        name: `etcd-backup save --from-file → dir, zstd + age (${name})`,
        run: async () => {
          const to = join(work, `save-${name}`);
          rmSync(to, { recursive: true, force: true });
          mkdirSync(to);
          const usage = await timed(NODE, [
            join(dir, "bin", "etcd-backup.js"),
            "save",
            "--from-file",
            file,
            "--to",
            to,
            "--recipient",
            recipient,
          ]);
          if (readdirSync(to).filter((f) => f.endsWith(".snap.zst.age")).length !== 1)
            throw new Error(`save (${name}) left no backup in ${to}`);
          rmSync(to, { recursive: true, force: true });
          return usage;
        },
      });
  }
  const results = new Map<string, Usage[]>();
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      log(`${shape}, run ${r + 1}/${runs}: ${c.name} (load ${loadavg()[0]!.toFixed(1)})`);
      results.set(c.name, [...(results.get(c.name) ?? []), await c.run()]);
    }
  }

  console.log(
    `\n### ${shape}: ${file} (${(await exec("stat", ["-c", "%s", file])).stdout.trim()} bytes); best of ${runs} (median)\n`,
  );
  console.log(
    "| command | CPU s (user+sys) | wall s | peak RSS MiB | load (1 min) | CPU vs etcdutl | wall vs etcdutl |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  const ref = cases[0]?.group === "status" ? results.get(cases[0].name) : undefined;
  for (const c of cases) {
    const us = results.get(c.name)!;
    const cpu = us.map((u) => u.cpu);
    const wall = us.map((u) => u.wall);
    const loads = us.map((u) => u.load);
    const vs = (mine: number[], theirs: number[] | undefined) =>
      c.group === "status" && theirs ? `${(best(mine) / best(theirs)).toFixed(2)}x` : "";
    console.log(
      `| ${c.name} | ${best(cpu).toFixed(2)} (${median(cpu).toFixed(2)}) | ${best(wall).toFixed(2)} (${median(wall).toFixed(2)}) | ${Math.max(...us.map((u) => u.rssMiB)).toFixed(0)} | ${best(loads).toFixed(1)}-${Math.max(...loads).toFixed(1)} | ${vs(
        cpu,
        ref?.map((u) => u.cpu),
      )} | ${vs(
        wall,
        ref?.map((u) => u.wall),
      )} |`,
    );
  }
  if (ref) {
    const want = JSON.stringify(JSON.parse(ref[0]!.stdout));
    for (const c of cases.filter((x) => x.group === "status")) {
      const got = JSON.stringify(JSON.parse(results.get(c.name)![0]!.stdout));
      if (got !== want) {
        failed = true;
        console.log(`\n**${c.name} printed ${got}, etcdutl ${want}**`);
      }
    }
    if (!failed) console.log(`\nEvery status output equals etcdutl's: ${want}`);
  }
}
if (failed) process.exitCode = 1;
