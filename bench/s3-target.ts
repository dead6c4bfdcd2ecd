/**
 * The S3 server the bench uploads to, ours and the AWS CLI's alike: the real MinIO (built by
 * scripts/install-peers.sh) when it is there, otherwise s3rver, the loopback S3 stand-in of the tests, which runs
 * inside the bench's own Node process. Either way the server runs on the same two cores as the command measured,
 * and its CPU is in no row.
 *
 * Why MinIO first: s3rver is JavaScript in the bench process, and it spent 1.0-1.3 s of CPU receiving a 67 MB
 * backup (MinIO: 0.5-0.65 s), CPU taken from the very cores the measured upload runs on.
 */

import { join } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { MINIO_CREDENTIALS, startMinio } from "../test/fixtures/minio-server.ts";
import { minioPeer } from "../test/fixtures/peers.ts";
import { startS3Server } from "../test/fixtures/s3-server.ts";

export type S3TargetKind = "minio" | "s3rver";

export interface S3Target {
  kind: S3TargetKind;
  /** What the tables and the chart call it, with its version. */
  label: string;
  endpoint: string;
  /** The environment the AWS CLI and our CLI read their credentials from. */
  env: Record<string, string>;
  /** Bytes stored under `prefix` in bucket `bench`, manifests (`.json`) left out. */
  storedBytes(prefix: string): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the server with bucket `bench`; `kind` undefined: MinIO when built, else s3rver. */
export async function startS3Target(work: string, kind?: S3TargetKind): Promise<S3Target> {
  const chosen: S3TargetKind = kind ?? (minioPeer() ? "minio" : "s3rver");
  let endpoint: string;
  let credentials: { accessKeyId: string; secretAccessKey: string };
  let label: string;
  let stopServer: () => Promise<void>;
  if (chosen === "minio") {
    const minio = await startMinio({ directory: join(work, "minio") });
    endpoint = minio.endpoint;
    credentials = MINIO_CREDENTIALS;
    label = `MinIO ${minio.peer.version}`;
    stopServer = () => minio.stop();
    await minio.createBucket("bench");
  } else {
    const s3rver = await startS3Server({ directory: join(work, "s3") });
    endpoint = s3rver.endpoint;
    credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
    label = "s3rver (the tests' S3 stand-in)";
    stopServer = () => s3rver.stop();
    await s3rver.createBucket("bench");
  }
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials });
  return {
    kind: chosen,
    label,
    endpoint,
    env: {
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_EC2_METADATA_DISABLED: "true",
    },
    async storedBytes(prefix) {
      let total = 0;
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: "bench", Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (!o.Key?.endsWith(".json")) total += o.Size ?? 0;
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return total;
    },
    async stop() {
      client.destroy();
      await stopServer();
    },
  };
}
