/**
 * The revision log under a sustained write load, and the replay time of a point-in-time restore.
 *
 *   npm run build && node bench/point-in-time.ts                 # 1,000 writes/s of 1-4 KiB for 60 s
 *   node bench/point-in-time.ts --rate 500 --seconds 30          # another load
 *   node bench/point-in-time.ts --work /dev/shm                  # also restore with the work folder on tmpfs
 *   node bench/point-in-time.ts --windows 1,64,256               # replay Txns in flight (1: one at a time)
 *
 * A real etcd (Debian's /usr/bin/etcd) on loopback; a full backup; `etcd-backup log` (the built CLI, default
 * 10 s segments, no encryption so the figures are the log's own, then with age) as its own process; a writer in
 * this process that keeps `--rate` puts a second in flight. Reported:
 * - the logger's CPU (user+system seconds per wall second, from /proc/PID/stat) and peak RSS (VmHWM);
 * - its lag: for every closed segment, when the log received its last revision minus when the writer got
 *   that revision's response (the watch delay, not counting the segment interval);
 * - the store growth per hour;
 * - `restore --revision LAST`: wall time, and the replay rate it prints, extrapolated to one hour of log.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { readLogCatalog } from "../src/point-in-time/catalog.ts";
import { LocalStore } from "../src/store/local.ts";
import { runCli } from "../test/fixtures/cli.ts";
import { EtcdKv } from "../test/fixtures/etcd-kv.ts";
import { startEtcd } from "../test/fixtures/etcd-server.ts";
import { SeededRandom } from "../test/fixtures/seeded-random.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "60" },
    interval: { type: "string", default: "10s" },
    work: { type: "string" },
    encrypt: { type: "boolean", default: false },
    windows: { type: "string", default: "1" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const CLK_TCK = 100;

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const work = mkdtempSync(join(tmpdir(), "etcd-backup-bench-pitr-"));
const dest = join(work, "store");
mkdirSync(dest);
const etcd = await startEtcd({ quotaBytes: 8 * 1024 * 1024 * 1024 });
const kv = new EtcdKv(etcd.endpoint);
const rng = new SeededRandom(1);
try {
  const keygen = await runCli(["keygen", "-o", join(work, "key.txt")]);
  const recipient = /Public key: (age1\w+)/.exec(keygen.stderr)?.[1] ?? "";
  const encryption = values.encrypt ? ["--recipient", recipient] : ["--no-encrypt"];
  await kv.putAll(
    Array.from({ length: 1000 }, (_, i) => ({ key: `/bench/k-${i}`, value: rng.bytes(2048) })),
    { perTxn: 100 },
  );
  const saved = await runCli(["save", "--endpoints", etcd.endpoint, "--to", dest, ...encryption]);
  if (saved.code !== 0) throw new Error(saved.stderr);

  const log = spawn(
    process.execPath,
    [
      "dist/cli/main.js",
      "log",
      "--endpoints",
      etcd.endpoint,
      "--to",
      dest,
      ...encryption,
      "--segment-interval",
      values.interval!,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let logErr = "";
  log.stderr.on("data", (d: Buffer) => {
    logErr += d.toString();
  });
  await sleep(2000);
  const pid = log.pid!;
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();

  // The writer: `rate` puts a second, as many in flight as it takes to keep that pace.
  const writeTime = new Map<number, number>();
  // Values: half random bytes, half text-like repeats (Kubernetes objects compress about 3-5x), 1-4 KiB.
  const pool = randomBytes(1 << 20);
  const text = Buffer.from("metadata:name:namespace:labels:app.kubernetes.io/".repeat(100));
  const value = () => {
    const n = rng.int(1024, 4096);
    const off = rng.int(0, pool.length - n);
    return Buffer.concat([pool.subarray(off, off + n / 2), text.subarray(0, n - n / 2)]);
  };
  let written = 0;
  let inFlight = 0;
  const end = Date.now() + seconds * 1000;
  const start = Date.now();
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (written < due && inFlight < 256) {
      written++;
      inFlight++;
      kv.txn([{ key: `/bench/k-${rng.int(0, 20_000)}`, value: value() }])
        .then((rev) => writeTime.set(Number(rev), Date.now()))
        .finally(() => inFlight--);
    }
    await sleep(2);
  }
  while (inFlight > 0) await sleep(5);
  const lastRevision = Math.max(...writeTime.keys());
  const store = new LocalStore(dest);
  for (;;) {
    const [l] = await readLogCatalog(store, { cluster: "etcd" });
    if ((l?.chains.at(-1)?.reach ?? 0) >= lastRevision) break;
    await sleep(500);
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const rss = peakRssMiB(pid);
  log.kill("SIGTERM");
  await new Promise((r) => log.once("exit", r));

  const [clusterLog] = await readLogCatalog(store, { cluster: "etcd" });
  const chain = clusterLog!.chains.at(-1)!;
  const lags = chain.segments
    .map(
      (s) => new Date(s.manifest.lastTime).getTime() - (writeTime.get(s.manifest.lastRevision) ?? Number.NaN),
    )
    .filter((x) => Number.isFinite(x));
  const storedBytes = chain.segments.reduce((n, s) => n + s.manifest.sizes.stored, 0);
  const plainBytes = chain.segments.reduce((n, s) => n + s.manifest.sizes.plain, 0);
  const revisions = chain.reach - chain.base;

  const restoreAt = async (dir: string, window: string) => {
    const out = join(dir, `restored-${Date.now()}.db`);
    const r0 = performance.now();
    const r = await runCli(
      [
        "restore",
        "--revision",
        String(lastRevision),
        "--to",
        dest,
        "-i",
        join(work, "key.txt"),
        "--to-file",
        out,
      ],
      { timeoutMs: 3_600_000, env: { ETCD_BACKUP_REPLAY_WINDOW: window } },
    );
    const restoreWall = (performance.now() - r0) / 1000;
    rmSync(out, { force: true });
    if (r.code !== 0) throw new Error(r.stderr);
    const m = /replayed (\d+) revisions \((\d+) events\) in ([\d.]+)s \((\d+) rounds resent\)/.exec(r.stderr);
    return {
      restoreWall,
      replayed: Number(m?.[1]),
      replaySeconds: Number(m?.[3]),
      resent: Number(m?.[4]),
      window,
    };
  };
  const restores = [];
  for (const window of values.windows!.split(",")) {
    restores.push({ where: `work folder in ${work} (disk)`, ...(await restoreAt(work, window)) });
    if (values.work) {
      const shm = mkdtempSync(join(values.work, "etcd-backup-bench-pitr-"));
      try {
        restores.push({ where: `work folder in ${values.work}`, ...(await restoreAt(shm, window)) });
      } finally {
        rmSync(shm, { recursive: true, force: true });
      }
    }
  }

  const hour = 3600 * rate;
  console.log(
    `load: ${written} puts of 1-4 KiB in ${seconds}s (${(written / seconds).toFixed(0)}/s), revisions ${chain.base + 1}-${chain.reach} (${revisions}); log ${values.encrypt ? "age-encrypted" : "unencrypted"}, segments every ${values.interval}`,
  );
  console.log(
    `logger: ${(cpu / wall).toFixed(3)} CPU s/s (${cpu.toFixed(1)} s over ${wall.toFixed(1)} s), peak RSS ${rss.toFixed(0)} MiB`,
  );
  console.log(
    `lag (receive - write response) over ${lags.length} segments: p50 ${quantile(lags, 0.5)} ms, p99 ${quantile(lags, 0.99)} ms, max ${Math.max(...lags)} ms`,
  );
  console.log(
    `store: ${chain.segments.length} segments, ${(plainBytes / 2 ** 20).toFixed(1)} MiB plain, ${(storedBytes / 2 ** 20).toFixed(1)} MiB stored = ${((storedBytes / 2 ** 30) * (3600 / seconds)).toFixed(2)} GiB per hour at this load`,
  );
  for (const r of restores) {
    const perSecond = r.replayed / r.replaySeconds;
    console.log(
      `restore --revision ${lastRevision} (${r.where}, window ${r.window}, ${r.resent} rounds resent): ${r.restoreWall.toFixed(1)} s, replay ${r.replayed} revisions in ${r.replaySeconds.toFixed(1)} s = ${perSecond.toFixed(0)} revisions/s; one hour at ${rate}/s (${hour} revisions) ~ ${(hour / perSecond / 60).toFixed(0)} min`,
    );
  }
  if (/gap/.test(logErr)) console.log(`note: the log reported a gap:\n${logErr}`);
} finally {
  kv.close();
  await etcd.destroy();
  rmSync(work, { recursive: true, force: true });
}
