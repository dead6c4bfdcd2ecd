/**
 * etcd-backup against the tools users would otherwise pick, on two shapes of etcd database, in one run: the
 * Kubernetes-shaped one (many small protobuf objects, some large ConfigMaps/Secrets/CRDs) and the large-value
 * one of issue 22 (values of 20-60 KB, most bytes on bbolt overflow pages); see k8s-data.ts.
 *
 *   npm run bench                          # 200 MB databases of both shapes, 3 runs each, table on stdout
 *   node bench/run.ts --shapes k8s         # one shape only
 *   node bench/run.ts --size 1000          # another size (generated once, cached in the temp directory)
 *   node bench/run.ts --sizes 200,1000     # both, plus the memory-flatness check across sizes
 *                                          # (sizes after the first run --runs-large times, default 1)
 *   node bench/run.ts --quick              # ~20 MB smoke run, one run each
 *   node bench/run.ts --json               # machine-readable results on stdout
 *   node bench/run.ts --svg bench/results.svg --markdown   # also write the chart, print a markdown table
 *
 * Every command runs in its own process(es) under `/usr/bin/time -v`: wall time, user+system CPU and peak
 * RSS come from there. A pipeline's processes run at once, so its CPU and RSS are the sums over its processes;
 * a sequence of steps (the talos-backup way) sums wall and CPU and takes the largest RSS. Each figure is the
 * best (wall, CPU: the smallest) of --runs runs, with the median beside it, and the largest peak RSS; cases are
 * interleaved run by run so that load from other users of the machine spreads over all of them, and the 1-minute
 * load average is recorded with every run (a loaded machine inflates wall times, less so CPU times). The S3
 * server (bench/s3-target.ts: the real MinIO when built, else s3rver, the tests' stand-in, with `--s3 minio|s3rver`
 * to choose) runs on loopback outside every figure, but it takes CPU from the same cores while an upload is
 * measured.
 *
 * etcd-backup runs as users run it: the npm launcher (`bin/etcd-backup.js` on the built CLI, so `npm run build`
 * first) with default settings and no NODE_OPTIONS (the launcher sets its own V8 options, src/cli/v8-flags.ts),
 * except the age encrypt row, which drives src/age's stream directly (the CLI has no bare encrypt command).
 * `--node-options "..."` puts Node options in front of the launcher, for experiments.
 *
 * The peers: etcdctl 3.4 (Debian's, the one talos-backup-era scripts use) for the talos-backup way and the shell
 * pipeline, etcdctl and etcdutl 3.6 (.peers/, scripts/install-peers.sh) for a bare save and for status; etcd 3.6
 * serves the snapshot. Where cgroups are writable, each size and shape also runs our save (to a directory and to
 * S3, zstd + age) inside a cgroup limited to 128 MiB and reports whether it completed, OOM kills and the
 * cgroup's peak charge (test/fixtures/memory-cgroup.ts).
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { memoryCgroupUnavailable, runInMemoryCgroup } from "../test/fixtures/memory-cgroup.ts";
import { benchSnapshot, etcdFromSnapshot, SHAPES, type Shape } from "./k8s-data.ts";
import { type S3Target, type S3TargetKind, startS3Target } from "./s3-target.ts";

const exec = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "dist", "cli", "main.js");
const LAUNCHER = join(ROOT, "bin", "etcd-backup.js");
const NODE = process.execPath;
const ETCD36 = join(ROOT, ".peers", "etcd-3.6.16", "bin");
const MiB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    shapes: { type: "string", default: SHAPES.join(",") },
    sizes: { type: "string" },
    quick: { type: "boolean", default: false },
    runs: { type: "string" },
    "runs-large": { type: "string", default: "1" },
    json: { type: "boolean", default: false },
    svg: { type: "string" },
    markdown: { type: "boolean", default: false },
    only: { type: "string" },
    "node-options": { type: "string" },
    s3: { type: "string" },
  },
  allowPositionals: true,
});

const sizes = values.quick
  ? [20]
  : (values.sizes ?? values.size)
      .split(",")
      .map(Number)
      .filter((n) => n > 0);
const runs = Number(values.runs ?? (values.quick ? 1 : 3));
const NODE_FLAGS = (values["node-options"] ?? "").split(/\s+/).filter(Boolean);
const shapes = values.shapes.split(",").filter(Boolean) as Shape[];
for (const s of shapes)
  if (!SHAPES.includes(s)) throw new Error(`--shapes: unknown shape ${s} (${SHAPES.join(", ")})`);
/** The 1-minute load average now: recorded with every run, since other users of the machine inflate times. */
const load1 = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The environment of every measured command: etcdctl's API version, and the S3 server's credentials (set in main). */
const AWS_ENV: Record<string, string> = { ETCDCTL_API: "3" };

/** One process's figures from `/usr/bin/time -v -o FILE`. */
interface Usage {
  wall: number;
  cpu: number;
  rssMiB: number;
}

function parseTime(text: string): Usage {
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(text);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text);
  const user = /User time \(seconds\): ([\d.]+)/.exec(text);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(text);
  if (!wall || !rss || !user || !sys)
    throw new Error(`cannot parse /usr/bin/time output: ${text.slice(-300)}`);
  return {
    wall: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
    cpu: Number(user[1]) + Number(sys[1]),
    rssMiB: Number(rss[1]) / 1024,
  };
}

/** A command line; `{}` stands for nothing, arguments are quoted for sh. */
type Cmd = string[];
/** Processes that run at once, stdout to stdin (`input`/`output` redirect the ends). */
interface Pipe {
  cmds: Cmd[];
  input?: string;
  output?: string;
  /** Exit codes a command may end with without failing the step (etcdctl writing to a FIFO). */
  allow?: (index: number, code: number, stderr: string) => boolean;
}

const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

let seq = 0;
/** Runs the pipe under sh, each process under its own /usr/bin/time; returns the summed figures. */
async function runPipe(dir: string, pipe: Pipe): Promise<Usage> {
  const id = seq++;
  const timeFile = (i: number) => join(dir, `time-${id}-${i}`);
  const errFile = (i: number) => join(dir, `err-${id}-${i}`);
  const rcFile = (i: number) => join(dir, `rc-${id}-${i}`);
  const parts = pipe.cmds.map((cmd, i) => {
    let s = `{ /usr/bin/time -v -o ${q(timeFile(i))} ${cmd.map(q).join(" ")}`;
    if (i === 0 && pipe.input) s += ` < ${q(pipe.input)}`;
    if (i === pipe.cmds.length - 1 && pipe.output) s += ` > ${q(pipe.output)}`;
    return `${s} 2> ${q(errFile(i))}; echo $? > ${q(rcFile(i))}; }`;
  });
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", parts.join(" | ")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, ...AWS_ENV },
    });
    child.on("error", reject);
    child.on("close", () => resolve());
  });
  const wall = (performance.now() - started) / 1000;
  let cpu = 0;
  let rss = 0;
  for (let i = 0; i < pipe.cmds.length; i++) {
    const code = Number(readFileSync(rcFile(i), "utf8").trim());
    const stderr = readFileSync(errFile(i), "utf8");
    if (code !== 0 && !pipe.allow?.(i, code, stderr)) {
      throw new Error(`${pipe.cmds[i]!.slice(0, 3).join(" ")} exited ${code}: ${stderr.slice(-800)}`);
    }
    const u = parseTime(readFileSync(timeFile(i), "utf8"));
    cpu += u.cpu;
    rss += u.rssMiB;
  }
  return { wall, cpu, rssMiB: rss };
}

/** Steps run one after another (the talos-backup way: one whole file per stage). */
async function runSteps(dir: string, steps: Pipe[]): Promise<Usage> {
  const total: Usage = { wall: 0, cpu: 0, rssMiB: 0 };
  for (const step of steps) {
    const u = await runPipe(dir, step);
    total.wall += u.wall;
    total.cpu += u.cpu;
    total.rssMiB = Math.max(total.rssMiB, u.rssMiB);
  }
  return total;
}

interface Case {
  id: string;
  group: string;
  tool: string;
  ours: boolean;
  /** Case id of the peer this one is compared with. */
  peer?: string;
  /** Prepares and runs once; returns figures and the bytes it stored. */
  run(run: number): Promise<{ usage: Usage; stored?: number }>;
}

export interface Row {
  id: string;
  group: string;
  tool: string;
  ours: boolean;
  peer?: string;
  /** Best (smallest) wall and CPU of the runs; medians beside them. */
  wall: number;
  cpu: number;
  wallMedian: number;
  rssMiB: number;
  mbPerSec: number;
  storedMB?: number;
  /** 1-minute load average at the runs: smallest and largest. */
  load: [number, number];
  /** Peer wall time / our wall time: above 1 we are faster. */
  speedVsPeer?: number;
  cpuVsPeer?: number;
  walls: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const fileSize = (p: string) => statSync(p).size;
function dirBytes(p: string, suffix = ""): number {
  let n = 0;
  for (const e of readdirSync(p, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(suffix) && !e.name.endsWith(".json") && !e.name.includes(".json."))
      n += fileSize(join(e.parentPath, e.name));
  }
  return n;
}

/** Our save run once inside a 128 MiB cgroup. */
export interface LimitedSave {
  id: string;
  completed: boolean;
  oomKills: number;
  peakMiB: number | undefined;
  rssMiB: number | undefined;
}

async function benchSize(
  shape: Shape,
  sizeMB: number,
  runs: number,
  s3: S3Target,
  work: string,
): Promise<{ rows: Row[]; dbBytes: number; limited: LimitedSave[] }> {
  const snapshot = await benchSnapshot(shape, sizeMB, log);
  const dbBytes = fileSize(snapshot);
  log(`${snapshot}: ${(dbBytes / 1e6).toFixed(1)} MB; starting etcd on it`);
  const etcd = await etcdFromSnapshot(snapshot);
  const dir = await mkdtemp(join(work, `${shape}-${sizeMB}-`));
  const key = join(dir, "key.txt");
  await exec("/usr/bin/age-keygen", ["-o", key]);
  const pub = (await exec("/usr/bin/age-keygen", ["-y", key])).stdout.trim();
  const E = etcd.endpoint;
  const S = s3.endpoint;
  const etcdctl = (...a: string[]) => [
    "/usr/bin/etcdctl",
    `--endpoints=${E}`,
    "--command-timeout=600s",
    ...a,
  ];
  const aws = (...a: string[]) => ["/usr/bin/aws", "--endpoint-url", S, "s3", ...a];
  const ours = (...a: string[]) => [NODE, ...NODE_FLAGS, LAUNCHER, ...a];
  const fresh = async (name: string) => {
    const p = join(dir, name);
    await rm(p, { recursive: true, force: true });
    await mkdir(p, { recursive: true });
    return p;
  };
  // The reference backup that restore/verify read: made once, outside the figures.
  const refDir = join(dir, "ref");
  await mkdir(refDir);
  await exec(NODE, [CLI, "save", "--endpoints", E, "--to", refDir, "--cluster", "ref", "--recipient", pub]);
  const refFile = join(dir, "ref.db");
  await exec("/usr/bin/etcdctl", [`--endpoints=${E}`, "snapshot", "save", refFile], {
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  const refBackup = readdirSync(refDir).find((f) => f.endsWith(".snap.zst.age"))!;

  const cases: Case[] = [
    {
      id: "etcdctl-save",
      group: "save",
      tool: "etcdctl 3.4 snapshot save (file)",
      ours: false,
      async run() {
        const out = join(await fresh("etcdctl"), "snap.db");
        const usage = await runPipe(dir, { cmds: [etcdctl("snapshot", "save", out)] });
        return { usage, stored: fileSize(out) };
      },
    },
    {
      id: "etcdctl36-save",
      group: "save",
      tool: "etcdctl 3.6 snapshot save (file)",
      ours: false,
      async run() {
        const out = join(await fresh("etcdctl36"), "snap.db");
        const usage = await runPipe(dir, {
          cmds: [
            [join(ETCD36, "etcdctl"), `--endpoints=${E}`, "--command-timeout=600s", "snapshot", "save", out],
          ],
        });
        return { usage, stored: fileSize(out) };
      },
    },
    {
      id: "talos-backup-way",
      group: "save",
      tool: "talos-backup way: snapshot file, zstd file, age file, aws s3 cp",
      ours: false,
      async run(r) {
        const d = await fresh("tb");
        const usage = await runSteps(dir, [
          { cmds: [etcdctl("snapshot", "save", join(d, "s.snap"))] },
          { cmds: [["/usr/bin/zstd", "-q", "-3", join(d, "s.snap"), "-o", join(d, "s.snap.zst")]] },
          { cmds: [["/usr/bin/age", "-r", pub, "-o", join(d, "s.snap.zst.age"), join(d, "s.snap.zst")]] },
          {
            cmds: [
              aws(
                "cp",
                "--only-show-errors",
                join(d, "s.snap.zst.age"),
                `s3://bench/${shape}-${sizeMB}/tb/${r}.snap.zst.age`,
              ),
            ],
          },
        ]);
        return { usage, stored: await s3.storedBytes(`${shape}-${sizeMB}/tb/${r}.snap.zst.age`) };
      },
    },
    {
      id: "shell-pipeline",
      group: "save",
      tool: "etcdctl (FIFO) | zstd | age | aws s3 cp -",
      ours: false,
      async run(r) {
        // etcdctl 3.4 writes `<path>.part`, fsyncs and renames it over `<path>`: /dev/stdout does not work (as
        // root it replaces /dev/stdout itself). A FIFO at `<path>.part` streams every byte; the fsync then fails
        // with EINVAL and etcdctl exits 5 after the data has gone through, which is accepted here.
        const d = await fresh("pipe");
        const fifo = join(d, "s.snap.part");
        await exec("/usr/bin/mkfifo", [fifo]);
        const usage = await runSteps(dir, [
          {
            cmds: [
              // sh waits for both, so time -v counts etcdctl's CPU (and its RSS, the larger of the two).
              [
                "/bin/sh",
                "-c",
                `${etcdctl("snapshot", "save", join(d, "s.snap")).map(q).join(" ")} >/dev/null & cat ${q(fifo)}; wait $!`,
              ],
              ["/usr/bin/zstd", "-q", "-3", "-c"],
              ["/usr/bin/age", "-r", pub],
              aws("cp", "--only-show-errors", "-", `s3://bench/${shape}-${sizeMB}/pipe/${r}.snap.zst.age`),
            ],
            allow: (i, code, stderr) => i === 0 && code === 5 && /sync .*invalid argument/.test(stderr),
          },
        ]);
        return { usage, stored: await s3.storedBytes(`${shape}-${sizeMB}/pipe/${r}.snap.zst.age`) };
      },
    },
    {
      id: "ours-dir-none",
      group: "save",
      tool: "etcd-backup save → dir, no compression, no encryption",
      ours: true,
      peer: "etcdctl36-save",
      async run() {
        const d = await fresh("ours-none");
        const usage = await runPipe(dir, {
          cmds: [ours("save", "--endpoints", E, "--to", d, "--compress", "none", "--no-encrypt")],
        });
        return { usage, stored: dirBytes(d) };
      },
    },
    {
      id: "ours-dir-zstd",
      group: "save",
      tool: "etcd-backup save → dir, zstd",
      ours: true,
      peer: "etcdctl36-save",
      async run() {
        const d = await fresh("ours-zstd");
        const usage = await runPipe(dir, {
          cmds: [ours("save", "--endpoints", E, "--to", d, "--no-encrypt")],
        });
        return { usage, stored: dirBytes(d) };
      },
    },
    {
      id: "ours-dir-zstd-age",
      group: "save",
      tool: "etcd-backup save → dir, zstd + age",
      ours: true,
      peer: "etcdctl36-save",
      async run() {
        const d = await fresh("ours-age");
        const usage = await runPipe(dir, {
          cmds: [ours("save", "--endpoints", E, "--to", d, "--recipient", pub)],
        });
        return { usage, stored: dirBytes(d) };
      },
    },
    {
      id: "ours-s3",
      group: "save",
      tool: "etcd-backup save → S3, zstd + age",
      ours: true,
      peer: "shell-pipeline",
      async run(r) {
        const usage = await runPipe(dir, {
          cmds: [
            ours(
              "save",
              "--endpoints",
              E,
              "--to",
              `s3://bench/${shape}-${sizeMB}/ours/${r}`,
              "--s3-endpoint",
              S,
              "--s3-path-style",
              "--recipient",
              pub,
            ),
          ],
        });
        return { usage, stored: await s3.storedBytes(`${shape}-${sizeMB}/ours/${r}/`) };
      },
    },
    {
      id: "age-cli",
      group: "age encrypt",
      tool: "age -r (snapshot file → file)",
      ours: false,
      async run() {
        const out = join(await fresh("age-cli"), "out.age");
        return {
          usage: await runPipe(dir, { cmds: [["/usr/bin/age", "-r", pub, "-o", out, refFile]] }),
          stored: fileSize(out),
        };
      },
    },
    {
      id: "ours-age",
      group: "age encrypt",
      tool: "etcd-backup age stream (snapshot file → file)",
      ours: true,
      peer: "age-cli",
      async run() {
        const out = join(await fresh("ours-age-enc"), "out.age");
        const driver = new URL("age-encrypt.ts", import.meta.url).pathname;
        return {
          usage: await runPipe(dir, { cmds: [[NODE, ...NODE_FLAGS, driver, refFile, out, pub]] }),
          stored: fileSize(out),
        };
      },
    },
    {
      id: "peer-restore",
      group: "restore",
      tool: "age -d | zstd -d > file",
      ours: false,
      async run() {
        const out = join(await fresh("peer-restore"), "s.db");
        const usage = await runPipe(dir, {
          cmds: [
            ["/usr/bin/age", "-d", "-i", key, join(refDir, refBackup)],
            ["/usr/bin/zstd", "-q", "-d", "-c"],
          ],
          output: out,
        });
        return { usage, stored: fileSize(out) };
      },
    },
    {
      id: "ours-restore",
      group: "restore",
      tool: "etcd-backup restore --to-file (dir, zstd + age)",
      ours: true,
      peer: "peer-restore",
      async run() {
        const out = join(await fresh("ours-restore"), "s.db");
        const usage = await runPipe(dir, {
          cmds: [ours("restore", "latest", "--to", refDir, "-i", key, "--to-file", out)],
        });
        return { usage, stored: fileSize(out) };
      },
    },
    {
      id: "etcdctl-status",
      group: "status",
      tool: "etcdctl 3.4 snapshot status -w json",
      ours: false,
      async run() {
        return {
          usage: await runPipe(dir, {
            cmds: [["/usr/bin/etcdctl", "snapshot", "status", "-w", "json", refFile]],
          }),
        };
      },
    },
    {
      id: "etcdutl36-status",
      group: "status",
      tool: "etcdutl 3.6 snapshot status -w json",
      ours: false,
      async run() {
        return {
          usage: await runPipe(dir, {
            cmds: [[join(ETCD36, "etcdutl"), "snapshot", "status", "-w", "json", refFile]],
          }),
        };
      },
    },
    {
      id: "ours-status",
      group: "status",
      tool: "etcd-backup status -w json (file)",
      ours: true,
      peer: "etcdutl36-status",
      async run() {
        return { usage: await runPipe(dir, { cmds: [ours("status", "-w", "json", refFile)] }) };
      },
    },
    {
      id: "peer-verify",
      group: "verify",
      tool: "age -d | zstd -d > file; etcdctl snapshot status",
      ours: false,
      async run() {
        const out = join(await fresh("peer-verify"), "s.db");
        const usage = await runSteps(dir, [
          {
            cmds: [
              ["/usr/bin/age", "-d", "-i", key, join(refDir, refBackup)],
              ["/usr/bin/zstd", "-q", "-d", "-c"],
            ],
            output: out,
          },
          { cmds: [["/usr/bin/etcdctl", "snapshot", "status", "-w", "json", out]] },
        ]);
        return { usage };
      },
    },
    {
      id: "ours-verify",
      group: "verify",
      tool: "etcd-backup verify (dir, zstd + age)",
      ours: true,
      peer: "peer-verify",
      async run() {
        return { usage: await runPipe(dir, { cmds: [ours("verify", "latest", "--to", refDir, "-i", key)] }) };
      },
    },
    {
      id: "ours-inspect",
      group: "inspect",
      tool: "etcd-backup inspect -o json (file)",
      ours: true,
      async run() {
        return { usage: await runPipe(dir, { cmds: [ours("inspect", "-o", "json", refFile)] }) };
      },
    },
  ];
  const only = values.only?.split(",");
  const chosen = only ? cases.filter((c) => only.some((o) => c.id.includes(o))) : cases;

  const results = new Map<string, { usage: Usage; stored?: number; load: number }[]>();
  const limited: LimitedSave[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      for (const c of chosen) {
        log(`${shape} ${sizeMB} MB, run ${r + 1}/${runs}: ${c.id} (load ${load1()})`);
        const before = load1();
        const res = await c.run(r);
        results.set(c.id, [...(results.get(c.id) ?? []), { ...res, load: Math.max(before, load1()) }]);
      }
    }
    const unavailable = memoryCgroupUnavailable();
    if (unavailable) log(`no 128 MiB cgroup run: ${unavailable}`);
    else if (!only || only.includes("limited")) {
      const limitedRuns: [string, string[]][] = [
        ["ours-dir-zstd-age", ["--to", await fresh("limited-dir")]],
        ["ours-s3", ["--to", `s3://bench/${shape}-${sizeMB}/limited`, "--s3-endpoint", S, "--s3-path-style"]],
      ];
      for (const [id, to] of limitedRuns) {
        log(`${shape} ${sizeMB} MB: ${id} in a 128 MiB cgroup`);
        const timeFile = join(dir, `limited-${id}.time`);
        const { NODE_OPTIONS: _, ...env } = process.env;
        const res = await runInMemoryCgroup(
          128 * MiB,
          "/usr/bin/time",
          ["-v", "-o", timeFile, ...ours("save", "--endpoints", E, ...to, "--recipient", pub)],
          { env: { ...env, ...AWS_ENV }, timeoutMs: 1_800_000, name: "etcd-backup-bench" },
        );
        const time = existsSync(timeFile) ? readFileSync(timeFile, "utf8") : "";
        limited.push({
          id,
          completed: res.code === 0 && res.oomKills === 0,
          oomKills: res.oomKills,
          peakMiB: res.peakBytes === undefined ? undefined : res.peakBytes / MiB,
          rssMiB: /Maximum resident/.test(time) ? parseTime(time).rssMiB : undefined,
        });
        if (res.code !== 0) log(`  exit ${res.code} ${res.signal ?? ""}: ${res.stderr.slice(-400)}`);
      }
    }
  } finally {
    await etcd.destroy();
    await rm(dir, { recursive: true, force: true });
  }
  const rows: Row[] = chosen.map((c) => {
    const rs = results.get(c.id)!;
    const wall = Math.min(...rs.map((x) => x.usage.wall));
    const stored = rs[0]!.stored;
    return {
      id: c.id,
      group: c.group,
      tool: c.tool,
      ours: c.ours,
      ...(c.peer ? { peer: c.peer } : {}),
      wall,
      cpu: Math.min(...rs.map((x) => x.usage.cpu)),
      wallMedian: median(rs.map((x) => x.usage.wall)),
      rssMiB: Math.max(...rs.map((x) => x.usage.rssMiB)),
      load: [Math.min(...rs.map((x) => x.load)), Math.max(...rs.map((x) => x.load))],
      mbPerSec: dbBytes / 1e6 / wall,
      ...(stored !== undefined ? { storedMB: stored / 1e6 } : {}),
      walls: rs.map((x) => x.usage.wall),
    };
  });
  for (const row of rows) {
    const peer = rows.find((p) => p.id === row.peer);
    if (peer) {
      row.speedVsPeer = peer.wall / row.wall;
      row.cpuVsPeer = row.cpu / peer.cpu;
    }
  }
  return { rows, dbBytes, limited };
}

interface Goal {
  goal: string;
  value: string;
  met: boolean;
}

function goals(rows: Row[]): Goal[] {
  const get = (id: string) => rows.find((r) => r.id === id);
  const out: Goal[] = [];
  const x = (v: number) => `${v.toFixed(2)}x`;
  const ourSaves = rows.filter((r) => r.ours && r.group === "save" && r.id !== "ours-dir-none");
  const peerSaves = rows.filter((r) => !r.ours && r.group === "save");
  if (ourSaves.length && peerSaves.length) {
    // Ahead of every peer: our slowest save with zstd against the fastest peer that delivers (compressed and
    // encrypted, or at least a snapshot file).
    const slowest = ourSaves.reduce((a, b) => (a.wall >= b.wall ? a : b));
    const fastestFull = peerSaves.filter((p) => p.id === "talos-backup-way" || p.id === "shell-pipeline");
    for (const p of fastestFull)
      out.push({
        goal: `every save of ours (slowest: ${slowest.id}) ahead of ${p.id}`,
        value: x(p.wall / slowest.wall),
        met: slowest.wall < p.wall,
      });
  }
  const bare = get("etcdctl36-save");
  const dirAge = get("ours-dir-zstd-age");
  if (bare && dirAge)
    out.push({
      goal: "stretch: save → dir, zstd + age ≥ 0.9x a bare etcdctl 3.6 snapshot save",
      value: x(bare.wall / dirAge.wall),
      met: bare.wall / dirAge.wall >= 0.9,
    });
  const st = get("ours-status");
  const peerSt = get("etcdutl36-status");
  if (st && peerSt)
    out.push({
      goal: "status ≤ 1.5x etcdutl 3.6 snapshot status (wall; cpu beside)",
      value: `${x(st.wall / peerSt.wall)} (cpu ${x(st.cpu / peerSt.cpu)})`,
      met: st.wall <= 1.5 * peerSt.wall,
    });
  const saves = rows.filter((r) => r.ours && r.group === "save");
  if (saves.length) {
    const worst = Math.max(...saves.map((r) => r.rssMiB));
    out.push({
      goal: "peak RSS ≤ 128 MiB for save (worst of ours)",
      value: `${worst.toFixed(0)} MiB`,
      met: worst <= 128,
    });
  }
  return out;
}

function table(shape: Shape, sizeMB: number, runs: number, dbBytes: number, rows: Row[]): string {
  const lines = [
    `### ${shape}, ${sizeMB} MB target: snapshot ${(dbBytes / 1e6).toFixed(1)} MB; best of ${runs} run(s) (median beside), peak RSS the largest`,
    "",
    "| what | tool | wall s (median) | cpu s | MB/s | peak RSS MiB | stored MB | load (1 min) | ours vs peer (speed, cpu) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const vs =
      r.speedVsPeer !== undefined
        ? `speed ${r.speedVsPeer.toFixed(2)}x of ${r.peer}, cpu ${r.cpuVsPeer!.toFixed(2)}x`
        : "";
    lines.push(
      `| ${r.group} | ${r.ours ? "**" : ""}${r.tool.replace(/\|/g, "\\|")}${r.ours ? "**" : ""} | ${r.wall.toFixed(2)} (${r.wallMedian.toFixed(2)}) | ${r.cpu.toFixed(2)} | ${r.mbPerSec.toFixed(0)} | ${r.rssMiB.toFixed(0)} | ${r.storedMB?.toFixed(1) ?? ""} | ${r.load[0].toFixed(1)}-${r.load[1].toFixed(1)} | ${vs} |`,
    );
  }
  return lines.join("\n");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * One section per shape (its first size): two bar panels each (throughput, peak RSS), one bar per tool, ours in
 * one colour and the peers in another.
 */
function svg(sections: { shape: Shape; sizeMB: number; runs: number; rows: Row[] }[]): string {
  const rowH = 22;
  const labelW = 390;
  const barW = 300;
  const width = labelW + 2 * (barW + 90);
  const maxT = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.mbPerSec)));
  const maxR = Math.max(...sections.flatMap((s) => s.rows.map((r) => r.rssMiB)));
  const parts: string[] = [];
  let y0 = 0;
  for (const sec of sections) {
    const top = y0 + 46;
    parts.push(
      `<text x="8" y="${y0 + 18}" font-size="14" font-weight="bold">${esc(`${sec.shape} etcd, ${sec.sizeMB} MB (best of ${sec.runs})`)}</text>`,
      `<text x="${labelW}" y="${y0 + 38}" font-weight="bold">throughput, MB/s of snapshot (longer is better)</text>`,
      `<text x="${labelW + barW + 90}" y="${y0 + 38}" font-weight="bold">peak RSS, MiB (shorter is better; line: 128 MiB)</text>`,
    );
    sec.rows.forEach((r, i) => {
      const y = top + i * rowH;
      const fill = r.ours ? "#2a7ae2" : "#9aa0a6";
      parts.push(`<text x="8" y="${y + 15}">${esc(`${r.group}: ${r.tool}`).slice(0, 64)}</text>`);
      const t = (r.mbPerSec / maxT) * barW;
      parts.push(
        `<rect x="${labelW}" y="${y + 4}" width="${t.toFixed(1)}" height="${rowH - 8}" fill="${fill}"/>`,
        `<text x="${labelW + t + 4}" y="${y + 15}">${r.mbPerSec.toFixed(0)}</text>`,
      );
      const x2 = labelW + barW + 90;
      const m = (r.rssMiB / maxR) * barW;
      parts.push(
        `<rect x="${x2}" y="${y + 4}" width="${m.toFixed(1)}" height="${rowH - 8}" fill="${fill}"/>`,
        `<text x="${x2 + m + 4}" y="${y + 15}">${r.rssMiB.toFixed(0)}</text>`,
      );
    });
    const limitX = labelW + barW + 90 + (128 / maxR) * barW;
    parts.push(
      `<line x1="${limitX.toFixed(1)}" y1="${top}" x2="${limitX.toFixed(1)}" y2="${top + sec.rows.length * rowH}" stroke="#d33" stroke-dasharray="4 3"/>`,
    );
    y0 = top + sec.rows.length * rowH + 14;
  }
  return `${[
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y0 + 20}" font-family="sans-serif" font-size="12">`,
    `<title>etcd-backup against etcdctl, etcdutl, zstd, age and the AWS CLI on two etcd shapes: throughput and peak memory</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `<text x="8" y="${y0 + 8}" fill="#555">blue: etcd-backup; grey: etcdctl, etcdutl, zstd, age, aws CLI. Shared, loaded 2-core VM; loopback etcd 3.6 and ${s3Label}.</text>`,
    "</svg>",
  ].join("\n")}\n`;
}

/** The S3 server's name and version, for the chart (set in main). */
let s3Label = "S3";

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  if (!existsSync(join(ETCD36, "etcdctl")))
    throw new Error(`${ETCD36} is missing: run scripts/install-peers.sh`);
  const work = await mkdtemp(join(tmpdir(), "etcd-backup-bench-"));
  const s3 = await startS3Target(work, values.s3 as S3TargetKind | undefined);
  Object.assign(AWS_ENV, s3.env);
  s3Label = s3.label;
  log(`S3 server: ${s3.label} at ${s3.endpoint}`);
  const results: {
    shape: Shape;
    sizeMB: number;
    runs: number;
    dbBytes: number;
    rows: Row[];
    goals: Goal[];
    limited: LimitedSave[];
  }[] = [];
  try {
    for (const shape of shapes) {
      for (const sizeMB of sizes) {
        const n = sizeMB === sizes[0] ? runs : Number(values["runs-large"]);
        const { rows, dbBytes, limited } = await benchSize(shape, sizeMB, n, s3, work);
        results.push({ shape, sizeMB, runs: n, dbBytes, rows, goals: goals(rows), limited });
      }
    }
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
  // Memory flatness: each of our rows' peak RSS at the largest size against the smallest, per shape.
  const flat = shapes.flatMap((shape) => {
    const mine = results.filter((r) => r.shape === shape);
    if (mine.length < 2) return [];
    return mine[0]!.rows
      .filter((r) => r.ours)
      .flatMap((r) => {
        const big = mine.at(-1)!.rows.find((b) => b.id === r.id);
        return big
          ? [{ shape, id: r.id, smallMiB: r.rssMiB, largeMiB: big.rssMiB, growth: big.rssMiB / r.rssMiB }]
          : [];
      });
  });
  const meta = {
    date: new Date().toISOString(),
    command: `node bench/run.ts ${process.argv.slice(2).join(" ")}`.trim(),
    node: process.version,
    nodeFlags: NODE_FLAGS.join(" "),
    runs,
    tools: {
      etcdctl: (await exec("/usr/bin/etcdctl", ["version"])).stdout.split("\n")[0],
      etcdctl36: (await exec(join(ETCD36, "etcdctl"), ["version"])).stdout.split("\n")[0],
      zstd: (await exec("/usr/bin/zstd", ["--version"])).stdout.trim(),
      age: (await exec("/usr/bin/age", ["--version"])).stdout.trim(),
      aws: (await exec("/usr/bin/aws", ["--version"])).stdout.trim(),
      s3: s3Label,
    },
  };
  if (values.svg) {
    const sections = shapes.flatMap((shape) => results.filter((r) => r.shape === shape).slice(0, 1));
    writeFileSync(values.svg, svg(sections));
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...meta, results, memoryFlatness: flat }, null, 2)}\n`);
    return;
  }
  const out: string[] = [
    `${meta.date} ${meta.command}; node ${meta.node}${meta.nodeFlags ? ` (ours with ${meta.nodeFlags})` : ""}; ${meta.tools.etcdctl}, ${meta.tools.etcdctl36} (3.6), ${meta.tools.zstd}, age ${meta.tools.age}, ${meta.tools.aws}; S3 server ${meta.tools.s3}`,
  ];
  for (const r of results) {
    out.push(
      "",
      table(r.shape, r.sizeMB, r.runs, r.dbBytes, r.rows),
      "",
      "| goal | value | met |",
      "|---|---:|---|",
    );
    for (const g of r.goals) out.push(`| ${g.goal} | ${g.value} | ${g.met ? "yes" : "**no**"} |`);
    if (r.limited.length) {
      out.push(
        "",
        "| our save in a cgroup limited to 128 MiB | completed | OOM kills | cgroup peak MiB (incl. page cache) | peak RSS MiB |",
        "|---|---|---:|---:|---:|",
      );
      for (const l of r.limited)
        out.push(
          `| ${l.id} | ${l.completed ? "yes" : "**no**"} | ${l.oomKills} | ${l.peakMiB?.toFixed(0) ?? ""} | ${l.rssMiB?.toFixed(0) ?? ""} |`,
        );
    }
  }
  if (flat.length) {
    out.push(
      "",
      `### memory flatness (${sizes[0]} MB → ${sizes.at(-1)} MB): our peak RSS within 20%`,
      "",
      "| shape | ours | small MiB | large MiB | growth | within 20% |",
      "|---|---|---:|---:|---:|---|",
    );
    for (const f of flat)
      out.push(
        `| ${f.shape} | ${f.id} | ${f.smallMiB.toFixed(0)} | ${f.largeMiB.toFixed(0)} | ${((f.growth - 1) * 100).toFixed(0)}% | ${f.growth <= 1.2 ? "yes" : "**no**"} |`,
      );
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

await main();
