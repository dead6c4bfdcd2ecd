import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { generateIdentity, identityFileText } from "../../src/age/index.ts";
import { Kube } from "../../src/operator/kube.ts";
import { type EtcdServer, fillKeys, type StartEtcdOptions, startEtcd } from "../fixtures/etcd-server.ts";
import { type KubeApiStandin, startKubeApiStandin } from "../fixtures/kube-apiserver-standin.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { assertNoSecrets, registerSecret } from "../fixtures/secrets.ts";

/** What the operator writes where people read it: Events and the status of its resources. */
const OPERATOR_OUTPUTS = [
  "events",
  "etcdbackups",
  "etcdbackupschedules",
  "talosetcdbackups",
  "talosetcdbackupschedules",
];

const run = promisify(execFile);

/** Real etcd, real S3 (s3rver), the API server stand-in, an age key pair and a scratch directory. */
export interface Harness {
  etcd: EtcdServer;
  s3: TestS3Server;
  api: KubeApiStandin;
  dir: string;
  kubeconfigPath: string;
  identityPath: string;
  recipient: string;
  bucket: string;
  kube: Kube;
  stop(): Promise<void>;
}

export async function startHarness(options: { etcd?: StartEtcdOptions } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-operator-"));
  const [etcd, s3, api] = await Promise.all([
    startEtcd(options.etcd ?? {}),
    startS3Server(),
    startKubeApiStandin({ bookmarkIntervalMs: 1000 }),
  ]);
  await fillKeys(etcd, 300);
  const bucket = "backups";
  await s3.createBucket(bucket);
  const kubeconfigPath = join(dir, "kubeconfig");
  await writeFile(kubeconfigPath, api.kubeconfig);
  const gen = generateIdentity();
  const identityPath = join(dir, "identity.txt");
  await writeFile(identityPath, identityFileText(gen), { mode: 0o600 });
  const secretLine = identityFileText(gen)
    .split("\n")
    .find((l) => l.startsWith("AGE-SECRET-KEY-"));
  registerSecret(secretLine, "the operator harness's age identity");
  api.put("secrets", "default", {
    metadata: { name: "s3-credentials", namespace: "default" },
    type: "Opaque",
    data: {
      AWS_ACCESS_KEY_ID: Buffer.from(s3.accessKeyId).toString("base64"),
      AWS_SECRET_ACCESS_KEY: Buffer.from(s3.secretAccessKey).toString("base64"),
    },
  });
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig);
  return {
    etcd,
    s3,
    api,
    dir,
    kubeconfigPath,
    identityPath,
    recipient: gen.recipient,
    bucket,
    kube: new Kube(kc),
    async stop() {
      // Secret scan: no Event, status or condition the operator wrote holds a known test secret.
      const written = OPERATOR_OUTPUTS.flatMap((plural) => api.list(plural));
      await Promise.allSettled([etcd.destroy(), s3.stop(), api.stop()]);
      assertNoSecrets(JSON.stringify(written), "the Events and statuses the operator wrote");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An EtcdBackup spec for the harness: etcd, the bucket with credentials from the Secret, age to its recipient. */
export function backupSpec(
  h: Pick<Harness, "etcd" | "bucket" | "s3" | "recipient">,
  extra: Record<string, unknown> = {},
) {
  return {
    clusterName: "demo",
    source: { etcd: { endpoints: [h.etcd.endpoint], dialTimeoutSeconds: 3 } },
    destination: {
      s3: {
        bucket: h.bucket,
        prefix: "clusters/demo",
        endpoint: h.s3.endpoint,
        region: "us-east-1",
        pathStyle: true,
        credentialsSecretRef: { name: "s3-credentials" },
      },
    },
    encryption: { recipients: [h.recipient] },
    ...extra,
  };
}

/** Object keys in the bucket (s3rver's directory, so the test does not depend on the code it checks). */
export async function bucketKeys(h: Pick<Harness, "s3" | "bucket">): Promise<string[]> {
  const { readdir } = await import("node:fs/promises");
  const root = join(h.s3.directory, h.bucket);
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.name.startsWith("._S3rver")) continue;
      if (e.isDirectory()) await walk(join(d, e.name), rel ? `${rel}/${e.name}` : e.name);
      else if (e.name.endsWith("._S3rver_object"))
        out.push(`${rel ? `${rel}/` : ""}${e.name.replace(/\._S3rver_object$/, "")}`);
    }
  };
  await walk(root, "");
  return out.sort();
}

/** Decrypts a stored object with the real `age -d` and returns the plain bytes. */
export async function ageDecrypt(
  h: Pick<Harness, "s3" | "bucket" | "dir" | "identityPath">,
  key: string,
): Promise<Buffer> {
  const path = join(h.s3.directory, h.bucket, `${key}._S3rver_object`);
  const out = join(h.dir, "decrypted");
  await run("age", ["-d", "-i", h.identityPath, "-o", out, path]);
  return await readFile(out);
}

/** Polls until `fn` returns a value (not undefined), or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const quietLog = () => pino({ level: process.env.OPERATOR_TEST_LOG ?? "silent" });

export { type KubeApiStandin, startKubeApiStandin };
