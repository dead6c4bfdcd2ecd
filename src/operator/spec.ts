import { CLUSTER_NAME_RULE, clusterNameProblem } from "../catalog/names.ts";
import { parseSpan } from "../duration.ts";
import { MAX_OBJECT_LOCK_DAYS, OBJECT_LOCK_MODES } from "../store/s3-settings.ts";
import { type ValidationError, z } from "../validation.ts";
import type { EtcdBackupScheduleSpec, EtcdBackupSpec } from "./api.ts";

/**
 * The operator's own check of a spec, mirroring the CRD's schema (deploy/operator/crds/). The API server
 * enforces the CRD; this catches objects it did not validate (an older CRD installed, a stand-in server) so
 * that they end `Failed` with reason `InvalidSpec` and a message naming the field, never a crash.
 */

const name = z.string().min(1);
const keyRef = z.object({ name, key: z.string().min(1) });

const etcd = z.object({
  endpoints: z.array(z.string().min(1)).min(1),
  tlsSecretRef: z
    .object({ name, caKey: name.optional(), certKey: name.optional(), keyKey: name.optional() })
    .optional(),
  insecureSkipVerify: z.boolean().optional(),
  dialTimeoutSeconds: z.number().int().min(1).max(300).optional(),
});

const talos = z
  .object({
    inCluster: z.boolean().optional(),
    talosconfigSecretRef: z.object({ name, key: name.optional() }).optional(),
    context: z.string().optional(),
    endpoints: z.array(z.string().min(1)).optional(),
    nodes: z.array(z.string().min(1)).optional(),
  })
  .refine((t) => (t.inCluster === true) !== (t.talosconfigSecretRef !== undefined), {
    message: "set exactly one of inCluster: true or talosconfigSecretRef",
  });

const controlPlaneRef = z.object({
  apiVersion: z
    .string()
    .regex(/^[a-z0-9.-]+\/[a-z0-9]+$/, "use group/version, e.g. cluster.x-k8s.io/v1beta1"),
  kind: name,
  name,
});

/** Immutability, the same for every object store (S3 Object Lock, GCS object retention, Azure immutability). */
const objectLock = z
  .object({
    mode: z.enum(OBJECT_LOCK_MODES).optional(),
    days: z.number().int().min(1).max(MAX_OBJECT_LOCK_DAYS).optional(),
    legalHold: z.boolean().optional(),
  })
  .refine((l) => (l.mode === undefined) === (l.days === undefined), "mode and days go together")
  .optional();

const s3 = z.object({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "not a valid S3 bucket name"),
  prefix: z
    .string()
    .regex(/^([^/]+(\/[^/]+)*)?$/, "no leading, trailing or double slash")
    .optional(),
  region: z.string().optional(),
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(\/.*)?$/, "use https://host[:port]")
    .optional(),
  pathStyle: z.boolean().optional(),
  credentialsSecretRef: z
    .object({
      name,
      accessKeyIdKey: name.optional(),
      secretAccessKeyKey: name.optional(),
      sessionTokenKey: name.optional(),
    })
    .optional(),
  caSecretRef: z.object({ name, key: name.optional() }).optional(),
  insecureSkipVerify: z.boolean().optional(),
  objectLock,
});

const azureBlob = z.object({
  container: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/, "not a valid Azure container name"),
  prefix: z
    .string()
    .regex(/^([^/]+(\/[^/]+)*)?$/, "no leading, trailing or double slash")
    .optional(),
  account: z
    .string()
    .regex(/^[a-z0-9]{3,24}$/, "not a valid storage account name")
    .optional(),
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^\s/?]+(\/[^\s?]*)?$/, "use https://host[:port][/path], without a query")
    .optional(),
  credentialsSecretRef: z
    .object({
      name,
      accountNameKey: name.optional(),
      accountKeyKey: name.optional(),
      sasTokenKey: name.optional(),
    })
    .optional(),
  objectLock,
});

const gcs = z.object({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/, "not a valid GCS bucket name"),
  prefix: z
    .string()
    .regex(/^([^/]+(\/[^/]+)*)?$/, "no leading, trailing or double slash")
    .optional(),
  endpoint: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(\/.*)?$/, "use https://host[:port]")
    .optional(),
  project: z.string().min(1).optional(),
  credentialsSecretRef: z.object({ name, key: name.optional() }).optional(),
  objectLock,
});

const encryption = z
  .object({
    none: z.boolean().optional(),
    recipients: z.array(z.string().min(1)).optional(),
    recipientsFrom: z
      .array(
        z
          .object({ secretKeyRef: keyRef.optional(), configMapKeyRef: keyRef.optional() })
          .refine((r) => (r.secretKeyRef === undefined) !== (r.configMapKeyRef === undefined), {
            message: "set exactly one of secretKeyRef or configMapKeyRef",
          }),
      )
      .optional(),
  })
  .refine(
    (e) => (e.none === true) !== Boolean(e.recipients?.length || e.recipientsFrom?.length),
    "give age recipients (recipients or recipientsFrom), or none: true to store the backup unencrypted",
  );

export const backupSpecSchema = z.object({
  clusterName: z
    .string()
    .superRefine((name, ctx) => {
      const problem = clusterNameProblem(name);
      if (problem !== null) ctx.addIssue({ code: "custom", message: `${problem} (${CLUSTER_NAME_RULE})` });
    })
    .optional(),
  source: z
    .object({ etcd: etcd.optional(), talos: talos.optional(), controlPlaneRef: controlPlaneRef.optional() })
    .refine(
      (s) => [s.etcd, s.talos, s.controlPlaneRef].filter((x) => x !== undefined).length === 1,
      "set exactly one of etcd, talos or controlPlaneRef",
    ),
  destination: z
    .object({ s3: s3.optional(), azureBlob: azureBlob.optional(), gcs: gcs.optional() })
    .refine(
      (d) => [d.s3, d.azureBlob, d.gcs].filter((x) => x !== undefined).length === 1,
      "set exactly one of s3, azureBlob or gcs",
    ),
  encryption,
  compression: z.enum(["zstd", "none"]).optional(),
  compressionLevel: z.number().int().min(1).max(19).optional(),
  deletionPolicy: z.enum(["Retain", "Delete"]).optional(),
  backoffLimit: z.number().int().min(0).max(10).optional(),
});

const count = z.number().int().min(1).optional();
export const scheduleSpecSchema = z
  .object({
    schedule: z.string().min(1),
    timeZone: z.string().optional(),
    suspend: z.boolean().optional(),
    concurrencyPolicy: z.enum(["Forbid", "Allow", "Replace"]).optional(),
    retention: z
      .object({
        keepLast: count,
        keepHourly: count,
        keepDaily: count,
        keepWeekly: count,
        keepMonthly: count,
        keepYearly: count,
        keepWithin: z.string().optional(),
      })
      .optional(),
    failedBackupsHistoryLimit: z.number().int().min(0).optional(),
    notify: z
      .object({
        urlsFrom: z.array(z.object({ secretKeyRef: keyRef })).min(1),
        format: z.enum(["json", "slack"]).optional(),
        on: z.array(z.enum(["success", "failure", "stale"])).optional(),
        staleAfter: z
          .string()
          .refine((v) => parseSpan(v) !== null, "not a span like 2h, 1d")
          .optional(),
      })
      .optional(),
    template: z.object({
      metadata: z
        .object({
          labels: z.record(z.string(), z.string()).optional(),
          annotations: z.record(z.string(), z.string()).optional(),
        })
        .optional(),
      spec: backupSpecSchema,
    }),
    continuous: z.boolean().optional(),
    segmentIntervalSeconds: z.number().int().min(1).max(3600).optional(),
  })
  .refine((s) => s.continuous !== true || s.template.spec.source.etcd !== undefined, {
    message:
      "the revision log needs an etcd source it can watch (Talos' apid exposes snapshots but no watch)",
    path: ["continuous"],
  });

/** Thrown for a spec that does not match the schema; the message names every offending field. */
export class InvalidSpecError extends Error {
  override name = "InvalidSpecError";
}

function describeIssues(error: ValidationError, root: string): string {
  return error.issues
    .map((i) => `${[root, ...i.path.map(String)].join(".")}: ${i.message}`)
    .slice(0, 5)
    .join("; ");
}

/** Checks an EtcdBackup's spec; throws `InvalidSpecError`. */
export function checkBackupSpec(spec: unknown): EtcdBackupSpec {
  const r = backupSpecSchema.safeParse(spec ?? {});
  if (!r.success) throw new InvalidSpecError(describeIssues(r.error, "spec"));
  return spec as EtcdBackupSpec;
}

/** Checks an EtcdBackupSchedule's spec; throws `InvalidSpecError`. */
export function checkScheduleSpec(spec: unknown): EtcdBackupScheduleSpec {
  const r = scheduleSpecSchema.safeParse(spec ?? {});
  if (!r.success) throw new InvalidSpecError(describeIssues(r.error, "spec"));
  return spec as EtcdBackupScheduleSpec;
}
