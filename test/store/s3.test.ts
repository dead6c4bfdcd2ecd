import { S3Store } from "../../src/store/s3.ts";
import { startS3Server } from "../fixtures/s3-server.ts";
import { runStoreConformance } from "./conformance.ts";

runStoreConformance("S3 (s3rver)", async () => {
  const server = await startS3Server();
  await server.createBucket("conformance");
  const store = new S3Store({
    bucket: "conformance",
    prefix: "backups/cluster-a",
    settings: { endpoint: server.endpoint, partSize: 5 * 1024 * 1024, retryBaseDelayMs: 10 },
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  return {
    store,
    async cleanup() {
      store.destroy();
      await server.stop();
    },
  };
});
