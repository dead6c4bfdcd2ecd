/**
 * Streams N MB through each object store's `put` and prints seconds, MB/s and peak RSS of the uploading process:
 * - azure: AzureBlobStore.put to Azurite (Microsoft's emulator, its own process on a loopback port), staged
 *   blocks committed at the end;
 * - s3: S3Store.put to s3rver (in this parent process) with the same part size and concurrency;
 * - each with a baseline child that puts one byte: the RSS of Node with that SDK loaded.
 * Every upload runs in a child process that reports process.resourceUsage().maxRSS.
 *
 * Usage: node bench/azure-blob.ts [--size MB] [--block-size MiB] [--concurrency N]
 * Both servers are emulators on the same cores, slower than the services: throughput is a floor and compares
 * the two stores' client paths on one machine; the memory figures are what matters (bound: block x (n + 1)).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { AzureBlobStore } from "../src/store/azure-blob.ts";
import { S3Store } from "../src/store/s3.ts";
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from "../test/fixtures/azurite-server.ts";
import { startS3Server } from "../test/fixtures/s3-server.ts";

const MB = 1_000_000;
const MiB = 1024 * 1024;
const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    "block-size": { type: "string", default: "8" },
    concurrency: { type: "string", default: "4" },
    child: { type: "string" },
    endpoint: { type: "string" },
  },
});
const sizeBytes = Math.round(Number(values.size) * MB);
const blockSize = Math.round(Number(values["block-size"]) * MiB);
const concurrency = Number(values.concurrency);

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

function openStore(kind: string, endpoint: string): AzureBlobStore | S3Store {
  return kind.startsWith("azure")
    ? new AzureBlobStore({
        container: "bench",
        settings: { endpoint, account: AZURITE_ACCOUNT, blockSize, concurrency },
        secrets: { accountKey: AZURITE_KEY },
      })
    : new S3Store({
        bucket: "bench",
        settings: { endpoint, partSize: blockSize, concurrency },
        credentials: S3_CREDENTIALS,
      });
}

async function child(kind: string, endpoint: string): Promise<void> {
  const store = openStore(kind, endpoint);
  const baseline = kind.endsWith("baseline");
  const started = performance.now();
  await store.put(`${kind}.bin`, source(baseline ? 1 : sizeBytes));
  const seconds = (performance.now() - started) / 1000;
  store.destroy();
  process.stdout.write(JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS }));
}

async function run(args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
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
      code === 0 ? resolve(stdout) : reject(new Error(`child exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

async function main(): Promise<void> {
  if (values.child) return child(values.child, values.endpoint ?? "");
  const [azurite, s3] = await Promise.all([startAzurite(), startS3Server()]);
  const results: { name: string; seconds: number; maxRssKiB: number }[] = [];
  const self = new URL(import.meta.url).pathname;
  const common = ["--size", String(values.size), "--block-size", String(values["block-size"])];
  try {
    await azurite.createContainer("bench");
    await s3.createBucket("bench");
    for (const kind of ["azure-baseline", "azure", "s3-baseline", "s3"]) {
      const endpoint = kind.startsWith("azure") ? azurite.endpoint : s3.endpoint;
      const out = await run([
        self,
        "--child",
        kind,
        "--endpoint",
        endpoint,
        "--concurrency",
        String(concurrency),
        ...common,
      ]);
      results.push({ name: kind, ...(JSON.parse(out) as { seconds: number; maxRssKiB: number }) });
      if (!kind.endsWith("baseline")) {
        const check = openStore(kind, endpoint);
        const info = await check.stat(`${kind}.bin`);
        check.destroy();
        if (info?.size !== sizeBytes)
          throw new Error(`${kind}.bin has ${info?.size} bytes, not ${sizeBytes}`);
      }
    }
  } finally {
    await Promise.all([azurite.stop(), s3.stop()]);
  }
  const mb = sizeBytes / MB;
  console.log(
    `${mb} MB, block/part ${values["block-size"]} MiB, concurrency ${concurrency} ` +
      `(memory bound: block x (concurrency + 1) = ${(blockSize * (concurrency + 1)) / MiB} MiB)`,
  );
  console.log("uploader         seconds    MB/s   peak RSS MiB");
  for (const r of results) {
    console.log(
      `${r.name.padEnd(15)} ${r.seconds.toFixed(2).padStart(8)} ` +
        `${(r.name.endsWith("baseline") ? "-" : (mb / r.seconds).toFixed(1)).padStart(7)} ` +
        `${(r.maxRssKiB / 1024).toFixed(0).padStart(14)}`,
    );
  }
}

await main();
