/**
 * Streams N MB to fake-gcs-server (the GCS emulator, a stand-in for the service: built by
 * scripts/install-peers.sh fake-gcs-server) and prints seconds, MB/s and peak RSS of the uploading process:
 * - ours: GcsStore.put (resumable upload, one chunk sent while the next is read), in a child process that reports
 *   process.resourceUsage().maxRSS;
 * - sdk-stream: @google-cloud/storage's own File.createWriteStream (resumable, same chunk size), same kind of child;
 * - baseline: the same child as ours putting one byte, for the RSS of Node with the SDK loaded.
 *
 * Usage: node bench/gcs.ts [--size MB] [--chunk-size MiB]   (BENCH_ORDER=baseline,sdk-stream,ours to reorder)
 * The emulator writes objects to a temporary directory in its own process, outside every figure; it is the
 * slowest party here, so throughput is a floor and the memory figures are what matters.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { Storage } from "@google-cloud/storage";
import { GcsStore } from "../src/store/gcs.ts";
import { startGcsServer } from "../test/fixtures/gcs-server.ts";

const MB = 1_000_000;
const MiB = 1024 * 1024;

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    "chunk-size": { type: "string", default: "8" },
    child: { type: "string" },
    endpoint: { type: "string" },
  },
});
const sizeBytes = Math.round(Number(values.size) * MB);
const chunkSize = Math.round(Number(values["chunk-size"]) * MiB);

/** `total` bytes of incompressible data, made from one random MiB so generating it costs next to nothing. */
function source(total: number): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
}

async function child(kind: string, endpoint: string): Promise<void> {
  const started = performance.now();
  if (kind === "ours" || kind === "baseline") {
    const store = new GcsStore({ bucket: "bench", settings: { endpoint, chunkSize } });
    await store.put(
      kind === "baseline" ? "baseline.bin" : "ours.bin",
      source(kind === "baseline" ? 1 : sizeBytes),
    );
  } else {
    const storage = new Storage({ apiEndpoint: endpoint });
    const file = storage.bucket("bench").file("sdk-stream.bin");
    await pipeline(
      source(sizeBytes),
      file.createWriteStream({ resumable: true, chunkSize, validation: false }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS }));
}

async function runChild(args: string[]): Promise<{ seconds: number; maxRssKiB: number }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, STORAGE_EMULATOR_HOST: "", GOOGLE_APPLICATION_CREDENTIALS: "" },
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    p.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0
        ? resolve(JSON.parse(stdout))
        : reject(new Error(`child exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

async function main(): Promise<void> {
  if (values.child) return child(values.child, values.endpoint ?? "");
  const server = await startGcsServer();
  await server.createBucket("bench");
  const self = new URL(import.meta.url).pathname;
  const results: { name: string; seconds: number; maxRssKiB: number }[] = [];
  try {
    for (const kind of (process.env.BENCH_ORDER ?? "baseline,ours,sdk-stream").split(",")) {
      const common = ["--size", String(values.size), "--chunk-size", String(values["chunk-size"])];
      results.push({
        name: kind,
        ...(await runChild([self, "--child", kind, "--endpoint", server.endpoint, ...common])),
      });
    }
    const check = new GcsStore({ bucket: "bench", settings: { endpoint: server.endpoint } });
    for (const key of ["ours.bin", "sdk-stream.bin"]) {
      const info = await check.stat(key);
      if (info?.size !== sizeBytes) throw new Error(`${key} has ${info?.size} bytes, not ${sizeBytes}`);
    }
  } finally {
    await server.stop();
  }
  const mb = sizeBytes / MB;
  console.log(
    `${mb} MB to fake-gcs-server ${server.peer.version}, chunk ${values["chunk-size"]} MiB ` +
      `(memory bound of ours: two chunks = ${(2 * chunkSize) / MiB} MiB)`,
  );
  console.log("uploader      seconds    MB/s   peak RSS MiB");
  for (const r of results) {
    console.log(
      `${r.name.padEnd(12)} ${r.seconds.toFixed(2).padStart(8)} ` +
        `${(r.name === "baseline" ? "-" : (mb / r.seconds).toFixed(1)).padStart(7)} ` +
        `${(r.maxRssKiB / 1024).toFixed(0).padStart(14)}`,
    );
  }
}

await main();
