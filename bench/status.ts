/**
 * Snapshot reading speed against etcdctl. Builds a snapshot of about --size MB through a real etcd
 * (Kubernetes-shaped keys, 1 KiB values), or reuses --file / a cached one in the temp directory, then times
 * `etcdctl snapshot status -w json` against our status and inspect, each run in its own process under
 * /usr/bin/time -v for wall time and peak RSS. Goals: status within 1.5x etcdctl's time, peak RSS under
 * file size + 50 MiB, inspect under 5 s.
 *
 *   node_modules/.bin/node bench/status.ts [--size 200] [--file PATH] [--runs 3]
 * (internal: `bench/status.ts --run status|inspect FILE` is the measured driver.)
 */
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { renderStatus, snapshotFileStatus } from "../src/mvcc/status.ts";
import { inspectSnapshotFile } from "../src/snapshot/inspect.ts";
import { startEtcd } from "../test/fixtures/etcd-server.ts";

const MiB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    file: { type: "string" },
    runs: { type: "string", default: "3" },
    run: { type: "string" },
  },
  allowPositionals: true,
});

if (values.run) {
  const file = process.argv[process.argv.length - 1]!;
  if (values.run === "status") process.stdout.write(renderStatus(snapshotFileStatus(file), "json"));
  else {
    const r = inspectSnapshotFile(file);
    process.stdout.write(`${JSON.stringify({ keys: r.keys, resources: r.resources.length })}\n`);
  }
  process.exit(0);
}

async function buildSnapshot(path: string, sizeMb: number): Promise<void> {
  const etcd = await startEtcd({
    args: ["--max-txn-ops", "4000", "--max-request-bytes", "16777216"],
    quotaBytes: 8 * 1024 * MiB,
  });
  try {
    const value = "x".repeat(1000);
    let next = 0;
    const batch = () => {
      const lines = [""];
      for (let i = 0; i < 1500; i++, next++)
        lines.push(
          `put /registry/configmaps/ns-${next % 50}/cm-${String(next).padStart(8, "0")} ${value}${next}`,
        );
      lines.push("", "", "");
      return lines.join("\n");
    };
    for (;;) {
      const status = JSON.parse(await etcd.ctl(["endpoint", "status", "-w", "json"])) as {
        Status: { dbSize: number };
      }[];
      const dbSize = status[0]?.Status.dbSize ?? 0;
      process.stderr.write(`\rbuilding: ${next} keys, db ${(dbSize / 1e6).toFixed(0)} MB  `);
      if (dbSize >= sizeMb * 1e6) break;
      await Promise.all([batch(), batch(), batch(), batch()].map((b) => etcd.ctl(["txn"], { input: b })));
    }
    process.stderr.write("\n");
    await etcd.ctl(["snapshot", "save", `${path}.part`]);
    await rename(`${path}.part`, path);
  } finally {
    await etcd.destroy();
  }
}

interface Measure {
  seconds: number;
  /** User plus system CPU time: less sensitive than wall time to other load on the machine. */
  cpu: number;
  rssMiB: number;
  stdout: string;
}

async function measure(cmd: string, args: string[]): Promise<Measure> {
  return await new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-v", cmd, ...args], { env: { ...process.env, ETCDCTL_API: "3" } });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${cmd} failed: ${err.slice(-2000)}`));
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err);
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
      const user = /User time \(seconds\): ([\d.]+)/.exec(err);
      const sys = /System time \(seconds\): ([\d.]+)/.exec(err);
      if (!wall || !rss) return reject(new Error(`cannot parse /usr/bin/time output: ${err.slice(-500)}`));
      const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
      resolve({
        seconds,
        cpu: Number(user?.[1] ?? 0) + Number(sys?.[1] ?? 0),
        rssMiB: Number(rss[1]) / 1024,
        stdout: out,
      });
    });
  });
}

const sizeMb = Number(values.size);
const file = values.file ?? join(tmpdir(), `etcd-backup-bench-${sizeMb}MB.db`);
if (!existsSync(file)) await buildSnapshot(file, sizeMb);
const fileMiB = statSync(file).size / MiB;
const runs = Number(values.runs);
const node = process.execPath;
const self = new URL(import.meta.url).pathname;

const cases: [string, string, string[]][] = [
  ["etcdctl snapshot status -w json", "/usr/bin/etcdctl", ["snapshot", "status", "-w", "json", file]],
  ["etcd-backup status", node, [self, "--run", "status", file]],
  ["etcd-backup inspect", node, [self, "--run", "inspect", file]],
];
const results = new Map<string, Measure[]>();
for (let i = 0; i < runs; i++) {
  for (const [name, cmd, args] of cases) {
    const m = await measure(cmd, args);
    results.set(name, [...(results.get(name) ?? []), m]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (name: string) => {
  const ms = results.get(name)!;
  return {
    seconds: median(ms.map((m) => m.seconds)),
    cpu: median(ms.map((m) => m.cpu)),
    rss: Math.max(...ms.map((m) => m.rssMiB)),
    stdout: ms[0]!.stdout,
  };
};
const ref = row(cases[0]![0]);
const ours = row(cases[1]![0]);
const insp = row(cases[2]![0]);
const same = JSON.stringify(JSON.parse(ref.stdout)) === JSON.stringify(JSON.parse(ours.stdout));

console.log(
  `snapshot ${file}: ${fileMiB.toFixed(1)} MiB, ${JSON.parse(ours.stdout).totalKey} bucket entries; median of ${runs} runs, peak RSS max`,
);
console.log("| command | wall s | cpu s | peak RSS MiB | wall vs etcdctl | cpu vs etcdctl |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const [name] of cases) {
  const r = row(name);
  console.log(
    `| ${name} | ${r.seconds.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.rss.toFixed(0)} | ${(r.seconds / ref.seconds).toFixed(2)}x | ${(r.cpu / ref.cpu).toFixed(2)}x |`,
  );
}
console.log(
  `status output identical to etcdctl: ${same ? "yes" : `NO\n  etcdctl: ${ref.stdout}  ours: ${ours.stdout}`}`,
);
console.log(
  `goal status <= 1.5x etcdctl: ${ours.seconds <= 1.5 * ref.seconds ? "met" : "MISSED"} (${(ours.seconds / ref.seconds).toFixed(2)}x wall, ${(ours.cpu / ref.cpu).toFixed(2)}x cpu)`,
);
console.log(
  `goal status RSS <= file + 50 MiB (${(fileMiB + 50).toFixed(0)}): ${ours.rss <= fileMiB + 50 ? "met" : "MISSED"} (${ours.rss.toFixed(0)} MiB)`,
);
console.log(
  `goal inspect < 5 s: ${insp.seconds < 5 ? "met" : "MISSED"} (${insp.seconds.toFixed(2)} s, ${insp.rss.toFixed(0)} MiB)`,
);
