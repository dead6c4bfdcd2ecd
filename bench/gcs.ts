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
import { pipeline } from "node:stream/promises";
import { Storage } from "@google-cloud/storage";
import { GcsStore } from "../src/store/gcs.ts";
import { startGcsServer } from "../test/fixtures/gcs-server.ts";
import { incompressible, MiB, putPathArgs, reportUpload, runChild, UploadTable } from "./put-path-harness.ts";

const args = putPathArgs({ name: "chunk-size", defaultMiB: "8" }, false);
const { sizeBytes } = args;
const chunkSize = args.pieceBytes;

async function child(kind: string, endpoint: string): Promise<void> {
  await reportUpload(async () => {
    if (kind === "ours" || kind === "baseline") {
      const store = new GcsStore({ bucket: "bench", settings: { endpoint, chunkSize } });
      await store.put(
        kind === "baseline" ? "baseline.bin" : "ours.bin",
        incompressible(kind === "baseline" ? 1 : sizeBytes),
      );
    } else {
      const storage = new Storage({ apiEndpoint: endpoint });
      const file = storage.bucket("bench").file("sdk-stream.bin");
      await pipeline(
        incompressible(sizeBytes),
        file.createWriteStream({ resumable: true, chunkSize, validation: false }),
      );
    }
  });
}

async function main(): Promise<void> {
  if (args.child) return child(args.child, args.endpoint ?? "");
  const server = await startGcsServer();
  await server.createBucket("bench");
  const self = new URL(import.meta.url).pathname;
  const results = new UploadTable();
  // The children find the emulator by --endpoint alone, and need no credentials.
  const env = { ...process.env, STORAGE_EMULATOR_HOST: "", GOOGLE_APPLICATION_CREDENTIALS: "" };
  try {
    for (const kind of (process.env.BENCH_ORDER ?? "baseline,ours,sdk-stream").split(",")) {
      results.add(
        kind,
        await runChild([self, "--child", kind, "--endpoint", server.endpoint, ...args.forward], env),
      );
    }
    const check = new GcsStore({ bucket: "bench", settings: { endpoint: server.endpoint } });
    for (const key of ["ours.bin", "sdk-stream.bin"]) {
      const info = await check.stat(key);
      if (info?.size !== sizeBytes) throw new Error(`${key} has ${info?.size} bytes, not ${sizeBytes}`);
    }
  } finally {
    await server.stop();
  }
  console.log(
    `${args.sizeMB} MB to fake-gcs-server ${server.peer.version}, chunk ${args.piece} MiB ` +
      `(memory bound of ours: two chunks = ${(2 * chunkSize) / MiB} MiB)`,
  );
  results.print(sizeBytes, 12);
}

await main();
