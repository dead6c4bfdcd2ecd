/**
 * Where `save`'s peak RSS goes (issue 22, goal 1: ≤ 128 MiB outside any cgroup), in three parts:
 *
 * 1. Module cost: each heavy module imported alone in a fresh Node (with etcd-backup's V8 options), its RSS
 *    and V8 heap growth after a full GC, and its load time.
 * 2. What `save` loads: one real save through the built CLI with a preload (bench/module-load-hook.ts) that
 *    records every module as it loads; modules and source bytes summed per package.
 * 3. Peak RSS: `save` with zstd + age (defaults, no NODE_OPTIONS) through the npm launcher `bin/etcd-backup.js`,
 *    to a directory and to S3 (s3rver, in this process, outside the figures), on both bench database shapes,
 *    each under `/usr/bin/time -v`; best and worst of --runs.
 *
 *   npm run build && node bench/rss-breakdown.ts                    # 200 MB, both shapes, 3 runs
 *   node bench/rss-breakdown.ts --size 1000 --runs 1 --shapes large-values
 *   node bench/rss-breakdown.ts --skip-saves                         # part 1 only, no etcd needed
 *   node bench/rss-breakdown.ts --skip-modules --runs 0 --shapes k8s # part 2 only (one shape)
 *   node bench/rss-breakdown.ts --skip-modules --skip-loaded          # part 3 only
 *   node bench/rss-breakdown.ts --baseline /tmp/base                 # part 3 also through another built
 *                                  # checkout's launcher (e.g. main: git archive main | tar -x -C /tmp/base,
 *                                  # link node_modules, tsc -p tsconfig.build.json), run by run interleaved
 *
 * The databases come from bench/k8s-data.ts (generated once, cached in the temp directory) and are served by
 * a real etcd 3.6 (.peers/). Figures only: nothing here asserts a time or a size.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { startS3Server } from "../test/fixtures/s3-server.ts";
import { benchSnapshot, etcdFromSnapshot, SHAPES, type Shape } from "./k8s-data.ts";

const exec = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;
const LAUNCHER = join(ROOT, "bin", "etcd-backup.js");
const CLI = join(ROOT, "dist", "cli", "main.js");
const HOOK = join(ROOT, "bench", "module-load-hook.ts");
const NODE = process.execPath;
const MiB = 1024 * 1024;
const { V8_FLAGS } = (await import(join(ROOT, "dist", "cli", "v8-flags.js"))) as { V8_FLAGS: string[] };

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    shapes: { type: "string", default: SHAPES.join(",") },
    runs: { type: "string", default: "3" },
    "skip-saves": { type: "boolean", default: false },
    "skip-modules": { type: "boolean", default: false },
    "skip-loaded": { type: "boolean", default: false },
    baseline: { type: "string" },
  },
});
const sizeMB = Number(values.size);
const runs = Number(values.runs);
const shapes = values.shapes.split(",").filter(Boolean) as Shape[];
for (const s of shapes)
  if (!SHAPES.includes(s)) throw new Error(`--shapes: unknown shape ${s} (${SHAPES.join(", ")})`);

const AWS_ENV = {
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: "S3RVER",
  AWS_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
};

/** Package specifiers and built modules whose import cost part 1 measures, each in a fresh process. */
const MODULES = [
  "commander",
  "zod",
  "@aws-sdk/client-s3",
  "@grpc/grpc-js",
  "dist/cli/commands/save.js",
  "dist/cli/command-settings.js",
  "dist/config/schema.js",
  "dist/config/job.js",
  "dist/backup/save.js",
  "dist/source/etcd.js",
  "dist/store/s3.js",
];

/**
 * What a save to a directory loads (its command, settings and their schema, job, pipeline, manifest, etcd
 * source), and a save to S3 besides; a manifest is parsed too, which is when a build that loads its manifest
 * schema lazily loads it. Also measured on the --baseline build.
 */
const SAVE_PATHS: [string, string][] = [
  [
    "all of a save to a directory",
    "dist/cli/commands/save.js+dist/cli/command-settings.js+dist/config/schema.js+dist/config/job.js+dist/backup/save.js+dist/catalog/manifest.js+@grpc/grpc-js",
  ],
  [
    "all of a save to S3",
    "dist/cli/commands/save.js+dist/cli/command-settings.js+dist/config/schema.js+dist/config/job.js+dist/backup/save.js+dist/catalog/manifest.js+@grpc/grpc-js+@aws-sdk/client-s3",
  ],
];

async function moduleCost(spec: string, root = ROOT): Promise<{ rss: number; heap: number; ms: number }> {
  const base = `file://${root.endsWith("/") ? root : `${root}/`}`;
  const targets = spec.split("+").map((m) => (m.startsWith("dist/") ? new URL(m, base).href : m));
  const script = `
    gc(); const a = process.memoryUsage(); const t = performance.now();
    for (const m of ${JSON.stringify(targets)}) {
      const mod = await import(m);
      if (typeof mod.parseManifest === "function") try { mod.parseManifest('{"format":1}'); } catch {}
    }
    const ms = performance.now() - t; gc(); gc(); const b = process.memoryUsage();
    console.log(JSON.stringify({ rss: b.rss - a.rss, heap: b.heapUsed - a.heapUsed, ms }));`;
  const { stdout } = await exec(NODE, [...V8_FLAGS, "--expose-gc", "--input-type=module", "-e", script], {
    cwd: root,
  });
  return JSON.parse(stdout) as { rss: number; heap: number; ms: number };
}

async function partModules(): Promise<void> {
  const base = await exec(NODE, [...V8_FLAGS, "-e", "console.log(JSON.stringify(process.memoryUsage()))"]);
  const b = JSON.parse(base.stdout) as NodeJS.MemoryUsage;
  console.log(`\n## 1. import cost, each alone in a fresh node ${V8_FLAGS.join(" ")}`);
  console.log(
    `empty node: RSS ${(b.rss / MiB).toFixed(1)} MiB, heap ${(b.heapUsed / MiB).toFixed(1)} MiB (median of 3 below)\n`,
  );
  console.log("| module | RSS +MiB | heap +MiB | load ms |");
  console.log("|---|---:|---:|---:|");
  const rows: [string, string, string][] = MODULES.map((m) => [m, m, ROOT]);
  for (const [name, spec] of SAVE_PATHS) {
    rows.push([`${name} (this checkout)`, spec, ROOT]);
    if (values.baseline) rows.push([`${name} (baseline)`, spec, values.baseline]);
  }
  for (const [name, spec, root] of rows) {
    const samples = [
      await moduleCost(spec, root),
      await moduleCost(spec, root),
      await moduleCost(spec, root),
    ];
    const med = (k: "rss" | "heap" | "ms") => samples.map((s) => s[k]).sort((x, y) => x - y)[1]!;
    console.log(
      `| ${name} | ${(med("rss") / MiB).toFixed(1)} | ${(med("heap") / MiB).toFixed(1)} | ${med("ms").toFixed(0)} |`,
    );
  }
}

/** The package a module URL belongs to (`@aws-sdk/client-s3`, `zod`), or `etcd-backup` / `node:`. */
function packageOf(url: string): string {
  if (url.startsWith("node:")) return "node:*";
  const i = url.lastIndexOf("/node_modules/");
  if (i < 0) return "etcd-backup";
  const rest = url.slice(i + "/node_modules/".length).split("/");
  return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
}

async function partLoaded(endpoint: string, work: string, recipient: string): Promise<void> {
  for (const [what, to] of [
    ["directory", join(work, "loaded-dir")],
    ["S3", `s3://bench/loaded/${Date.now()}`],
  ] as const) {
    const log = join(work, `modules-${what}.jsonl`);
    const memoryLog = join(work, `memory-${what}.jsonl`);
    const s3 = to.startsWith("s3://") ? ["--s3-endpoint", s3Endpoint!, "--s3-path-style"] : [];
    if (!to.startsWith("s3://")) await mkdir(to, { recursive: true });
    await exec(
      NODE,
      [
        ...V8_FLAGS,
        "--import",
        HOOK,
        CLI,
        "save",
        "--endpoints",
        endpoint,
        "--to",
        to,
        ...s3,
        "--recipient",
        recipient,
      ],
      {
        env: { ...process.env, ...AWS_ENV, ETCD_BACKUP_MODULE_LOG: log, ETCD_BACKUP_MEMORY_LOG: memoryLog },
        maxBuffer: 64 * MiB,
      },
    );
    const rows = readFileSync(log, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { url: string; bytes: number });
    const per = new Map<string, { n: number; bytes: number }>();
    for (const r of rows) {
      const p = per.get(packageOf(r.url)) ?? { n: 0, bytes: 0 };
      p.n++;
      p.bytes += r.bytes;
      per.set(packageOf(r.url), p);
    }
    const total = rows.reduce((n, r) => n + r.bytes, 0);
    console.log(`\n## 2. modules loaded by one save to ${what} (zstd + age)\n`);
    console.log("| package | modules | source KiB |");
    console.log("|---|---:|---:|");
    for (const [name, p] of [...per].sort((a, b) => b[1].bytes - a[1].bytes))
      console.log(`| ${name} | ${p.n} | ${(p.bytes / 1024).toFixed(0)} |`);
    console.log(`| all | ${rows.length} | ${(total / 1024).toFixed(0)} |`);
    const mem = JSON.parse(readFileSync(memoryLog, "utf8")) as {
      peak: NodeJS.MemoryUsage;
      peakKinds?: { anon: number; file: number };
      maxHeapUsed: number;
      maxHeapTotal: number;
      maxExternal: number;
    };
    const f = (n: number) => (n / MiB).toFixed(1);
    const p = mem.peak;
    console.log(
      `\nat the RSS peak (sampled every 10 ms): RSS ${f(p.rss)} MiB = V8 heap ${f(p.heapTotal)} (${f(p.heapUsed)} used) + external ${f(p.external)} (array buffers ${f(p.arrayBuffers)}) + the rest (code, native, malloc) ${f(p.rss - p.heapTotal - p.external)}${mem.peakKinds ? `; of the RSS, file-backed pages (the node binary, mostly) ${f(mem.peakKinds.file)}, anonymous ${f(mem.peakKinds.anon)}` : ""}; largest seen: heap used ${f(mem.maxHeapUsed)}, heap total ${f(mem.maxHeapTotal)}, external ${f(mem.maxExternal)}`,
    );
  }
}

let s3Endpoint: string | undefined;

/** Runs `cmd` under /usr/bin/time -v; returns peak RSS (MiB), wall and CPU seconds. */
async function timed(cmd: string[]): Promise<{ rssMiB: number; wall: number; cpu: number }> {
  const child = spawn("/usr/bin/time", ["-v", ...cmd], {
    env: { ...process.env, ...AWS_ENV },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`${cmd.slice(1, 4).join(" ")} exited ${code}: ${err.slice(-1500)}`);
  const num = (re: RegExp) => Number(re.exec(err)?.[1] ?? Number.NaN);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err);
  return {
    rssMiB: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    wall: wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : Number.NaN,
    cpu: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
  };
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  if (!values["skip-modules"]) await partModules();
  if (values["skip-saves"]) return;
  const work = await mkdtemp(join(tmpdir(), "etcd-backup-rss-"));
  const s3 = await startS3Server({ directory: join(work, "s3") });
  s3Endpoint = s3.endpoint;
  await s3.createBucket("bench");
  const key = join(work, "key.txt");
  await exec("/usr/bin/age-keygen", ["-o", key]);
  const recipient = (await exec("/usr/bin/age-keygen", ["-y", key])).stdout.trim();
  const results: string[] = [];
  try {
    for (const shape of shapes) {
      const snapshot = await benchSnapshot(shape, sizeMB, (s) => process.stderr.write(`${s}\n`));
      const etcd = await etcdFromSnapshot(snapshot);
      try {
        if (shape === shapes[0] && !values["skip-loaded"]) await partLoaded(etcd.endpoint, work, recipient);
        const builds: [string, string][] = [["this checkout", LAUNCHER]];
        if (values.baseline) builds.push(["baseline", join(values.baseline, "bin", "etcd-backup.js")]);
        for (const target of ["directory", "S3"] as const) {
          const figures = new Map(builds.map(([name]) => [name, [] as Awaited<ReturnType<typeof timed>>[]]));
          for (let r = 0; r < runs; r++) {
            // Interleaved, so that load from other users of the machine falls on both builds alike.
            for (const [name, launcher] of builds) {
              const to =
                target === "S3" ? `s3://bench/${shape}/${r}-${Date.now()}` : join(work, `dir-${shape}-${r}`);
              const s3Flags = target === "S3" ? ["--s3-endpoint", s3.endpoint, "--s3-path-style"] : [];
              if (target === "directory") await mkdir(to, { recursive: true });
              const cmd = [NODE, launcher, "save", "--endpoints", etcd.endpoint, "--to", to, ...s3Flags];
              figures.get(name)!.push(await timed([...cmd, "--recipient", recipient]));
              if (target === "directory") await rm(to, { recursive: true, force: true });
            }
          }
          for (const [name, fig] of figures) {
            if (fig.length === 0) continue;
            const rss = fig.map((f) => f.rssMiB).sort((a, b) => a - b);
            const cpu = Math.min(...fig.map((f) => f.cpu));
            const wall = Math.min(...fig.map((f) => f.wall));
            results.push(
              `| ${name} | ${shape} | ${target} | ${rss[0]!.toFixed(0)} | ${rss[rss.length >> 1]!.toFixed(0)} | ${rss.at(-1)!.toFixed(0)} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} |`,
            );
          }
        }
      } finally {
        await etcd.destroy();
      }
    }
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
  console.log(
    `\n## 3. peak RSS of save (zstd + age, defaults, through bin/etcd-backup.js), ${sizeMB} MB databases, ${runs} runs`,
  );
  console.log(`command: node bin/etcd-backup.js save --endpoints E --to DIR|s3://... --recipient age1...\n`);
  console.log("| build | shape | to | peak RSS MiB: best | median | worst | wall s (best) | CPU s (best) |");
  console.log("|---|---|---|---:|---:|---:|---:|---:|");
  for (const r of results) console.log(r);
}

await main();
