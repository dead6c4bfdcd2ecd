import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { generateHybrid } from "../../src/age/hybrid.ts";

/**
 * The operator's samples and the spec mistakes its CRDs must reject. One list, run twice: against the CRD
 * schemas with ajv (test/operator/crds.test.ts) and against a real kube-apiserver that serves the CRDs
 * (test/peers/operator-kube-apiserver.test.ts), so the two cannot drift apart.
 */
export const DEPLOY = join(import.meta.dirname, "..", "..", "deploy", "operator");

export function samples(): { file: string; doc: { kind: string; spec: unknown } }[] {
  const dir = join(DEPLOY, "samples");
  return readdirSync(dir).flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), "utf8"))
      .map((d) => d.toJS() as { kind: string; spec: unknown } | null)
      .filter(
        (doc): doc is { kind: string; spec: unknown } =>
          doc?.kind === "EtcdBackup" || doc?.kind === "EtcdBackupSchedule",
      )
      .map((doc) => ({ file, doc })),
  );
}

export const baseBackup = () =>
  structuredClone(samples().find((s) => s.file === "etcdbackup-etcd.yaml")!.doc) as never as {
    kind: string;
    spec: Record<string, unknown> & {
      source: Record<string, unknown>;
      destination: { s3: Record<string, unknown> };
      encryption: Record<string, unknown>;
    };
  };
export const badBackupCases: [string, (d: ReturnType<typeof baseBackup>) => void][] = [
  ["a missing destination", (d) => delete (d.spec as Record<string, unknown>).destination],
  ["a missing bucket", (d) => delete d.spec.destination.s3.bucket],
  ["no encryption decision", (d) => (d.spec.encryption = {})],
  ["none: false without recipients", (d) => (d.spec.encryption = { none: false })],
  ["none: true with recipients", (d) => (d.spec.encryption.none = true)],
  ["a bad compression enum", (d) => (d.spec.compression = "gzip")],
  ["a bad deletionPolicy enum", (d) => (d.spec.deletionPolicy = "Orphan")],
  ["a recipient that is not age1...", (d) => (d.spec.encryption.recipients = ["ssh-ed25519 AAAA"])],
  ["a bucket name with capitals", (d) => (d.spec.destination.s3.bucket = "My_Bucket")],
  ["an endpoint without scheme", (d) => (d.spec.destination.s3.endpoint = "minio:9000")],
  ["a prefix with a leading slash", (d) => (d.spec.destination.s3.prefix = "/clusters")],
  ["both etcd and talos", (d) => (d.spec.source.talos = { inCluster: true })],
  ["no source", (d) => (d.spec.source = {})],
  ["talos with neither inCluster nor a Secret", (d) => (d.spec.source = { talos: { nodes: ["10.0.0.1"] } })],
  ["talos inCluster: false", (d) => (d.spec.source = { talos: { inCluster: false } })],
  ["a compression level of 0", (d) => (d.spec.compressionLevel = 0)],
  ["no etcd endpoint", (d) => (d.spec.source = { etcd: { endpoints: [] } })],
  [
    "an age1pq1 recipient one character short",
    (d) => (d.spec.encryption.recipients = [generateHybrid().recipient.slice(0, -1)]),
  ],
  [
    "an object lock mode that is not one",
    (d) => (d.spec.destination.s3.objectLock = { mode: "strict", days: 1 }),
  ],
  ["object lock days of 0", (d) => (d.spec.destination.s3.objectLock = { mode: "governance", days: 0 })],
  [
    "both s3 and azureBlob",
    (d) => ((d.spec.destination as Record<string, unknown>).azureBlob = { container: "etcd-backups" }),
  ],
  [
    "an azureBlob container with capitals",
    (d) => (d.spec.destination = { azureBlob: { container: "Etcd_Backups" } } as never),
  ],
  [
    "an azureBlob without a container",
    (d) => (d.spec.destination = { azureBlob: { prefix: "clusters" } } as never),
  ],
  [
    "an azureBlob endpoint with a query (a SAS belongs in a Secret)",
    (d) =>
      (d.spec.destination = {
        azureBlob: { container: "c1c", endpoint: "https://a.blob.core.windows.net/?sig=x" },
      } as never),
  ],
];
export const baseSchedule = () =>
  structuredClone(samples().find((s) => s.file === "etcdbackupschedule-etcd.yaml")!.doc) as never as {
    kind: string;
    spec: Record<string, unknown> & { retention: Record<string, unknown> };
  };
export const badScheduleCases: [string, (d: ReturnType<typeof baseSchedule>) => void][] = [
  ["no schedule", (d) => delete d.spec.schedule],
  ["a cron with 4 fields", (d) => (d.spec.schedule = "* * * *")],
  ["a bad concurrencyPolicy", (d) => (d.spec.concurrencyPolicy = "Sometimes")],
  ["keepLast 0", (d) => (d.spec.retention.keepLast = 0)],
  ["keepWithin without unit", (d) => (d.spec.retention.keepWithin = "7")],
  ["no template", (d) => delete d.spec.template],
];
