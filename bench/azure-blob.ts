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
import { AzureBlobStore } from "../src/store/azure-blob.ts";
import { S3Store } from "../src/store/s3.ts";
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from "../test/fixtures/azurite-server.ts";
import { startS3Server } from "../test/fixtures/s3-server.ts";
import { incompressible, MiB, putPathArgs, reportUpload, runChild, UploadTable } from "./put-path-harness.ts";

const S3_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

const args = putPathArgs({ name: "block-size", defaultMiB: "8" }, true);
const { sizeBytes, concurrency } = args;
const blockSize = args.pieceBytes;

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
  await reportUpload(async () => {
    await store.put(`${kind}.bin`, incompressible(baseline ? 1 : sizeBytes));
  });
  store.destroy();
}

async function main(): Promise<void> {
  if (args.child) return child(args.child, args.endpoint ?? "");
  const [azurite, s3] = await Promise.all([startAzurite(), startS3Server()]);
  const results = new UploadTable();
  const self = new URL(import.meta.url).pathname;
  try {
    await azurite.createContainer("bench");
    await s3.createBucket("bench");
    for (const kind of ["azure-baseline", "azure", "s3-baseline", "s3"]) {
      const endpoint = kind.startsWith("azure") ? azurite.endpoint : s3.endpoint;
      results.add(kind, await runChild([self, "--child", kind, "--endpoint", endpoint, ...args.forward]));
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
  console.log(
    `${args.sizeMB} MB, block/part ${args.piece} MiB, concurrency ${concurrency} ` +
      `(memory bound: block x (concurrency + 1) = ${(blockSize * (concurrency + 1)) / MiB} MiB)`,
  );
  results.print(sizeBytes, 15);
}

await main();
