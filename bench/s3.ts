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
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { S3Store } from "../src/store/s3.ts";
import { startS3Server } from "../test/fixtures/s3-server.ts";
import {
  incompressible,
  MiB,
  putPathArgs,
  reportUpload,
  run,
  runChild,
  UploadTable,
} from "./put-path-harness.ts";

const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
/** For the children and the aws CLI: s3rver's credentials, and no instance metadata to look for. */
const ENV = {
  ...process.env,
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: "S3RVER",
  AWS_REGION: "us-east-1",
  AWS_EC2_METADATA_DISABLED: "true",
};

const args = putPathArgs({ name: "part-size", defaultMiB: "16" }, true);
const { sizeBytes, concurrency } = args;
const partSize = args.pieceBytes;

async function child(kind: string, endpoint: string): Promise<void> {
  await reportUpload(async () => {
    if (kind === "ours" || kind === "baseline") {
      const store = new S3Store({
        bucket: "bench",
        settings: { endpoint, partSize, concurrency },
        credentials: CREDENTIALS,
      });
      // The baseline puts one byte: the RSS of Node with the SDK loaded, to subtract from the others.
      await store.put(
        kind === "baseline" ? "baseline.bin" : "ours.bin",
        incompressible(kind === "baseline" ? 1 : sizeBytes),
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
        params: { Bucket: "bench", Key: "lib-storage.bin", Body: incompressible(sizeBytes) },
        partSize,
        queueSize: concurrency,
      }).done();
      client.destroy();
    }
  });
}

async function main(): Promise<void> {
  if (args.child) return child(args.child, args.endpoint ?? "");
  const server = await startS3Server();
  await server.createBucket("bench");
  const results = new UploadTable();
  const self = new URL(import.meta.url).pathname;
  try {
    for (const kind of ["baseline", "ours", "lib-storage"]) {
      const figures = await runChild(
        [self, "--child", kind, "--endpoint", server.endpoint, ...args.forward],
        ENV,
      );
      results.add(kind, figures);
    }
    const started = performance.now();
    const { stderr } = await run(
      "/usr/bin/time",
      ["-v", "/usr/bin/aws", "--endpoint-url", server.endpoint, "s3", "cp", "-", "s3://bench/aws.bin"],
      { stdin: incompressible(sizeBytes), env: ENV },
    );
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    results.add("aws-cli", { seconds: (performance.now() - started) / 1000, maxRssKiB: Number(rss?.[1]) });

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
  console.log(
    `${args.sizeMB} MB to s3rver, part ${args.piece} MiB, concurrency ${concurrency} ` +
      `(memory bound of ours: part x (concurrency + 1) = ${(partSize * (concurrency + 1)) / MiB} MiB)`,
  );
  results.print(sizeBytes, 12);
}

await main();
