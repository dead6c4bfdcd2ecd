/**
 * Streams N MB to a local s3rver three ways and prints seconds, MB/s and peak RSS of the uploading process:
 * - ours: S3Store.put (own multipart loop), in a child process that reports process.resourceUsage().maxRSS;
 * - lib-storage: @aws-sdk/lib-storage Upload with the same part size and concurrency, same kind of child;
 * - baseline: the same child as ours putting one byte, for the RSS of Node with the SDK loaded;
 * - aws-cli: `/usr/bin/aws s3 cp - s3://...` fed from a pipe, measured with `/usr/bin/time -v`.
 *
 * Usage: node bench/s3.ts [--size MB] [--part-size MiB] [--concurrency N]
 * s3rver runs in this (parent) process and writes to a temporary directory; it is the slowest party, so the
 * throughput figures are a floor, and the memory figures are what matters.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { S3Store } from "../src/store/s3.ts";
import { startS3Server } from "../test/fixtures/s3-server.ts";

const MB = 1_000_000;
const MiB = 1024 * 1024;
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "200" },
    "part-size": { type: "string", default: "16" },
    concurrency: { type: "string", default: "4" },
    child: { type: "string" },
    endpoint: { type: "string" },
  },
});
const sizeBytes = Math.round(Number(values.size) * MB);
const partSize = Math.round(Number(values["part-size"]) * MiB);
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

async function child(kind: string, endpoint: string): Promise<void> {
  const started = performance.now();
  if (kind === "ours" || kind === "baseline") {
    const store = new S3Store({
      bucket: "bench",
      settings: { endpoint, partSize, concurrency },
      credentials: CREDENTIALS,
    });
    // The baseline puts one byte: the RSS of Node with the SDK loaded, to subtract from the others.
    await store.put(
      kind === "baseline" ? "baseline.bin" : "ours.bin",
      source(kind === "baseline" ? 1 : sizeBytes),
    );
    store.destroy();
  } else {
    const client = new S3Client({
      region: "us-east-1",
      endpoint,
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    await new Upload({
      client,
      params: { Bucket: "bench", Key: "lib-storage.bin", Body: source(sizeBytes) },
      partSize,
      queueSize: concurrency,
    }).done();
    client.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS }));
}

interface Result {
  name: string;
  seconds: number;
  maxRssKiB: number;
}

async function run(
  cmd: string,
  args: string[],
  stdin?: Readable,
): Promise<{ stdout: string; stderr: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        AWS_REGION: "us-east-1",
        AWS_EC2_METADATA_DISABLED: "true",
      },
    });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d: Buffer) => {
      stdout += d;
    });
    p.stderr?.on("data", (d: Buffer) => {
      stderr += d;
    });
    if (stdin && p.stdin) stdin.pipe(p.stdin);
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0
        ? resolve({ stdout, stderr })
        : reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

async function main(): Promise<void> {
  if (values.child) return child(values.child, values.endpoint ?? "");
  const server = await startS3Server();
  await server.createBucket("bench");
  const results: Result[] = [];
  const self = new URL(import.meta.url).pathname;
  const common = [
    "--size",
    String(values.size),
    "--part-size",
    String(values["part-size"]),
    "--concurrency",
    String(concurrency),
  ];
  try {
    for (const kind of ["baseline", "ours", "lib-storage"]) {
      const { stdout } = await run(process.execPath, [
        self,
        "--child",
        kind,
        "--endpoint",
        server.endpoint,
        ...common,
      ]);
      results.push({ name: kind, ...(JSON.parse(stdout) as Omit<Result, "name">) });
    }
    const started = performance.now();
    const { stderr } = await run(
      "/usr/bin/time",
      ["-v", "/usr/bin/aws", "--endpoint-url", server.endpoint, "s3", "cp", "-", "s3://bench/aws.bin"],
      source(sizeBytes),
    );
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    results.push({
      name: "aws-cli",
      seconds: (performance.now() - started) / 1000,
      maxRssKiB: Number(rss?.[1]),
    });

    const check = new S3Store({
      bucket: "bench",
      settings: { endpoint: server.endpoint },
      credentials: CREDENTIALS,
    });
    for (const key of ["ours.bin", "lib-storage.bin", "aws.bin"]) {
      const info = await check.stat(key);
      if (info?.size !== sizeBytes) throw new Error(`${key} has ${info?.size} bytes, not ${sizeBytes}`);
    }
    check.destroy();
  } finally {
    await server.stop();
  }
  const mb = sizeBytes / MB;
  console.log(
    `${mb} MB to s3rver, part ${values["part-size"]} MiB, concurrency ${concurrency} ` +
      `(memory bound of ours: part x (concurrency + 1) = ${(partSize * (concurrency + 1)) / MiB} MiB)`,
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
