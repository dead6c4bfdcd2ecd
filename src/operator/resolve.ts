import { join } from "node:path";
import { AgeKeyError, parseRecipient, parseRecipientsFile } from "../age/index.ts";
import { type BackupJob, backupJobFromConfig } from "../config/job.ts";
import { type BackupJobConfigInput, parseBackupJobConfig } from "../config/schema.ts";
import { describeError } from "../errors.ts";
import type { SnapshotSource } from "../source/source.ts";
import { AzureBlobStore } from "../store/azure-blob.ts";
import { GcsStore } from "../store/gcs.ts";
import { parseGcsCredentials } from "../store/gcs-credentials.ts";
import { S3Store } from "../store/s3.ts";
import type { ObjectLockSettings } from "../store/s3-settings.ts";
import { SERVICE_ACCOUNT_DIR } from "../talos/config.ts";
import {
  type AzureBlobDestinationSpec,
  type EtcdBackupSpec,
  type GcsDestinationSpec,
  type ObjectLockSpec,
  Reason,
  type S3DestinationSpec,
} from "./api.ts";
import {
  type ControlPlaneReader,
  type ControlPlaneSettings,
  resolveControlPlane,
} from "./control-plane-refs/fetch.ts";
import { SpecProblem } from "./spec-problem.ts";

/**
 * Translates a spec into the one job description (config/schema.ts) and builds it with the one builder
 * (config/job.ts), reading the Secrets and ConfigMaps it names from the object's own namespace only. Every user mistake becomes a `SpecProblem` with a reason and a
 * message that says what to fix; key material never appears in one.
 */

/** What the operator may read: Secrets and ConfigMaps, by namespace and name. */
export interface ConfigReader {
  secret(namespace: string, name: string): Promise<Record<string, Buffer> | null>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | null>;
}

// In its own module so that the modules resolve.ts uses (control-plane-refs/) can throw it without a cycle.
export { reasonOf, SpecProblem } from "./spec-problem.ts";

export interface ResolveContext {
  namespace: string;
  reader: ConfigReader;
  /** Where a Talos ServiceAccount's talosconfig is mounted (`/var/run/secrets/talos.dev`). */
  talosServiceAccountDir?: string;
  /** Reads the objects `spec.source.controlPlaneRef` names (control-plane-refs/fetch.ts). */
  controlPlanes?: { reader: ControlPlaneReader; settings?: ControlPlaneSettings };
  warn: (line: string) => void;
}

/** A Secret's key in the object's namespace; its absence is a `SpecProblem` naming `field`. */
export async function secretKey(
  ctx: ResolveContext,
  name: string,
  key: string,
  field: string,
): Promise<Buffer> {
  const data = await ctx.reader.secret(ctx.namespace, name);
  if (!data) {
    throw new SpecProblem(
      Reason.SecretNotFound,
      `Secret ${ctx.namespace}/${name} (${field}) not found: create it in namespace ${ctx.namespace} or fix ${field}`,
    );
  }
  const value = data[key];
  if (value === undefined) {
    const known = Object.keys(data).sort().join(", ") || "none";
    throw new SpecProblem(
      Reason.KeyNotFound,
      `Secret ${ctx.namespace}/${name} has no key ${JSON.stringify(key)} (${field}); its keys: ${known}`,
    );
  }
  return value;
}

async function configMapKey(ctx: ResolveContext, name: string, key: string, field: string): Promise<string> {
  const data = await ctx.reader.configMap(ctx.namespace, name);
  if (!data) {
    throw new SpecProblem(
      Reason.ConfigMapNotFound,
      `ConfigMap ${ctx.namespace}/${name} (${field}) not found: create it in namespace ${ctx.namespace} or fix ${field}`,
    );
  }
  const value = data[key];
  if (value === undefined) {
    const known = Object.keys(data).sort().join(", ") || "none";
    throw new SpecProblem(
      Reason.KeyNotFound,
      `ConfigMap ${ctx.namespace}/${name} has no key ${JSON.stringify(key)} (${field}); its keys: ${known}`,
    );
  }
  return value;
}

/** Tags failures to start the snapshot so that the condition says the source is the problem. */
class SourceProblems implements SnapshotSource {
  readonly description: string;
  private readonly inner: SnapshotSource;
  constructor(inner: SnapshotSource) {
    this.inner = inner;
    this.description = inner.description;
  }
  async open(signal?: AbortSignal) {
    try {
      return await this.inner.open(signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new SpecProblem(
        Reason.SourceUnreachable,
        `cannot snapshot ${this.description}: ${describeError(err)}`,
        {
          cause: err,
        },
      );
    }
  }
}

/**
 * The spec as the one job description every front end uses (config/schema.ts): Secrets and ConfigMaps are read
 * here (their absence is this front end's `SpecProblem`), everything else is translated, not decided. The job
 * is validated by the same parser and built by the same builder as `save`'s and the daemon's.
 */
export async function jobConfigFromSpec(
  spec: EtcdBackupSpec,
  cluster: string,
  ctx: ResolveContext,
): Promise<BackupJobConfigInput> {
  const { etcd, talos, controlPlaneRef } = spec.source;
  let source: BackupJobConfigInput["source"];
  if (etcd) {
    const ref = etcd.tlsSecretRef;
    const field = "spec.source.etcd.tlsSecretRef";
    source = {
      kind: "etcd",
      endpoints: etcd.endpoints,
      ...(ref
        ? {
            pem: {
              ca: await secretKey(ctx, ref.name, ref.caKey ?? "ca.crt", field),
              cert: await secretKey(ctx, ref.name, ref.certKey ?? "tls.crt", field),
              key: await secretKey(ctx, ref.name, ref.keyKey ?? "tls.key", field),
            },
          }
        : {}),
      insecureSkipTlsVerify: etcd.insecureSkipVerify ?? false,
      dialTimeoutMs: (etcd.dialTimeoutSeconds ?? 10) * 1000,
    };
  } else if (talos) {
    const ref = talos.talosconfigSecretRef;
    const key = ref?.key ?? "config";
    source = {
      kind: "talos",
      ...(talos.inCluster || !ref
        ? { talosconfig: join(ctx.talosServiceAccountDir ?? SERVICE_ACCOUNT_DIR, "config") }
        : {
            talosconfigText: {
              text: (await secretKey(ctx, ref.name, key, "spec.source.talos.talosconfigSecretRef")).toString(
                "utf8",
              ),
              label: `Secret ${ctx.namespace}/${ref.name} key ${key}`,
            },
          }),
      ...(talos.context ? { context: talos.context } : {}),
      endpoints: talos.endpoints ?? [],
      nodes: talos.nodes ?? [],
    };
  } else if (controlPlaneRef) {
    if (!ctx.controlPlanes) {
      throw new SpecProblem(
        Reason.InvalidSpec,
        "spec.source.controlPlaneRef: this operator cannot read control planes",
      );
    }
    const { reader, settings } = ctx.controlPlanes;
    source = (await resolveControlPlane(controlPlaneRef, ctx.namespace, reader, ctx.reader, settings)).source;
  } else {
    throw new SpecProblem(Reason.InvalidSpec, "spec.source: set etcd, talos or controlPlaneRef");
  }
  const e = spec.encryption;
  const recipients = [...(e.recipients ?? [])];
  // Each key is checked where the spec names it, so the condition says which field to fix; the job's builder
  // parses them again as it does for every front end.
  for (const [i, r] of recipients.entries()) {
    try {
      parseRecipient(r);
    } catch (err) {
      throw new SpecProblem(
        Reason.InvalidRecipient,
        `spec.encryption.recipients[${i}]: ${describeError(err)}`,
      );
    }
  }
  for (const [i, from] of (e.recipientsFrom ?? []).entries()) {
    const field = `spec.encryption.recipientsFrom[${i}]`;
    const text = from.secretKeyRef
      ? (await secretKey(ctx, from.secretKeyRef.name, from.secretKeyRef.key, field)).toString("utf8")
      : from.configMapKeyRef
        ? await configMapKey(ctx, from.configMapKeyRef.name, from.configMapKeyRef.key, field)
        : "";
    try {
      parseRecipientsFile(text);
    } catch (err) {
      throw new SpecProblem(Reason.InvalidRecipient, `${field}: ${describeError(err)}`);
    }
    // age's recipients-file format: one key a line, `#` comments.
    recipients.push(
      ...text
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#")),
    );
  }
  let destination: Pick<
    BackupJobConfigInput,
    "destination" | "s3" | "s3Secrets" | "azure" | "azureSecrets" | "gcs" | "gcsSecrets" | "objectLock"
  >;
  const azureBlob = spec.destination.azureBlob;
  const gcs = spec.destination.gcs;
  if (azureBlob) {
    const azure = await azureFromSpec(azureBlob, ctx);
    const objectLock = lockOf(azureBlob.objectLock);
    destination = {
      destination: azure.destination,
      azure: azure.settings,
      ...(azure.secrets ? { azureSecrets: azure.secrets } : {}),
      ...(objectLock ? { objectLock } : {}),
    };
  } else if (gcs) {
    const g = await gcsFromSpec(gcs, ctx);
    const objectLock = lockOf(gcs.objectLock);
    destination = {
      destination: g.destination,
      gcs: g.gcs,
      ...(g.gcsSecrets ? { gcsSecrets: g.gcsSecrets } : {}),
      ...(objectLock ? { objectLock } : {}),
    };
  } else {
    const s3 = await s3FromSpec(s3Of(spec.destination), ctx);
    destination = {
      destination: s3.destination,
      s3: s3.settings,
      ...(s3.secrets ? { s3Secrets: s3.secrets } : {}),
    };
  }
  return {
    cluster,
    source,
    ...destination,
    compression: spec.compression ?? "zstd",
    ...(spec.compressionLevel ? { level: spec.compressionLevel } : {}),
    encryption:
      e.none === true
        ? recipients.length > 0
          ? { kind: "age", recipients }
          : { kind: "none" }
        : { kind: "age", recipients },
  };
}

/**
 * The job a spec describes, built by the one builder (config/job.ts). Mistakes become `SpecProblem`s with the
 * condition reason the kind of error says: an unusable recipient (age's bad-input errors) is InvalidRecipient,
 * any other invalid setting InvalidSpec; the source is wrapped so that a failure to snapshot is SourceUnreachable.
 */
export async function resolveJob(
  spec: EtcdBackupSpec,
  cluster: string,
  ctx: ResolveContext,
): Promise<BackupJob> {
  const input = await jobConfigFromSpec(spec, cluster, ctx);
  if (spec.encryption.none === true && input.encryption.kind === "age") {
    throw new SpecProblem(Reason.InvalidSpec, "spec.encryption: none: true contradicts the recipients given");
  }
  return await buildJob(input, ctx);
}

/** Builds a job description as `resolveJob` does (for front ends that translate other resources into one). */
export async function buildJob(input: BackupJobConfigInput, ctx: ResolveContext): Promise<BackupJob> {
  try {
    const job = await backupJobFromConfig(parseBackupJobConfig(input), { warn: ctx.warn });
    return { ...job, source: new SourceProblems(job.source) };
  } catch (err) {
    if (err instanceof SpecProblem) throw err;
    if (err instanceof AgeKeyError)
      throw new SpecProblem(Reason.InvalidRecipient, `spec.encryption: ${describeError(err)}`, {
        cause: err,
      });
    const message = describeError(err).replace(/^invalid configuration: \d+ problems?: /, "");
    throw new SpecProblem(Reason.InvalidSpec, `spec: ${message}`, { cause: err });
  }
}

/** The S3 destination of a spec: the destination URL, its settings, and the Secrets' credentials and CA. */
async function s3FromSpec(
  s3: S3DestinationSpec,
  ctx: ResolveContext,
): Promise<{
  destination: string;
  settings: NonNullable<BackupJobConfigInput["s3"]>;
  secrets?: NonNullable<BackupJobConfigInput["s3Secrets"]>;
}> {
  const creds = s3.credentialsSecretRef;
  const field = "spec.destination.s3.credentialsSecretRef";
  const text = async (name: string, key: string, f: string) =>
    (await secretKey(ctx, name, key, f)).toString("utf8").trim();
  const credentials = creds
    ? {
        accessKeyId: await text(creds.name, creds.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID", field),
        secretAccessKey: await text(creds.name, creds.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY", field),
        ...(creds.sessionTokenKey
          ? { sessionToken: await text(creds.name, creds.sessionTokenKey, field) }
          : {}),
      }
    : undefined;
  const caPem = s3.caSecretRef
    ? await secretKey(
        ctx,
        s3.caSecretRef.name,
        s3.caSecretRef.key ?? "ca.crt",
        "spec.destination.s3.caSecretRef",
      )
    : undefined;
  return {
    destination: `s3://${s3.bucket}/${s3.prefix ?? ""}`,
    settings: {
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      ...(s3.region ? { region: s3.region } : {}),
      ...(s3.pathStyle !== undefined ? { pathStyle: s3.pathStyle } : {}),
      ...(s3.insecureSkipVerify ? { insecureSkipTlsVerify: true } : {}),
      ...(lockOf(s3.objectLock) ? { objectLock: lockOf(s3.objectLock) } : {}),
    },
    ...(credentials || caPem
      ? { secrets: { ...(credentials ? { credentials } : {}), ...(caPem ? { caPem } : {}) } }
      : {}),
  };
}

/** A destination's `objectLock` as the job configuration takes it; undefined when it asks for nothing. */
function lockOf(lock: ObjectLockSpec | undefined): ObjectLockSettings | undefined {
  if (!lock || (!lock.mode && !lock.legalHold)) return undefined;
  return {
    ...(lock.mode ? { mode: lock.mode } : {}),
    ...(lock.days !== undefined ? { days: lock.days } : {}),
    ...(lock.legalHold ? { legalHold: true } : {}),
  };
}

/** A spec's destination: exactly one of `s3`, `azureBlob` and `gcs` (the CRD and spec.ts make sure). */
export type DestinationSpec = EtcdBackupSpec["destination"];

/** The store a destination opens, as the operator uses it: S3, Azure Blob or Google Cloud Storage. */
export type OperatorStore = S3Store | AzureBlobStore | GcsStore;

/** Where a store's keys are rooted, for statuses and Events: `s3://bucket`, `azblob://container`, `gs://bucket`. */
export function storeRoot(store: OperatorStore): string {
  if (store instanceof AzureBlobStore) return `azblob://${store.container}`;
  if (store instanceof GcsStore) return `gs://${store.bucket}`;
  return `s3://${store.bucket}`;
}

function s3Of(destination: DestinationSpec): S3DestinationSpec {
  if (!destination.s3)
    throw new SpecProblem(Reason.InvalidSpec, "spec.destination: set exactly one of s3, azureBlob or gcs");
  return destination.s3;
}

/** The Azure Blob destination of a spec: the destination URL, its settings, and the Secret's credentials. */
async function azureFromSpec(
  azure: AzureBlobDestinationSpec,
  ctx: ResolveContext,
): Promise<{
  destination: string;
  settings: NonNullable<BackupJobConfigInput["azure"]>;
  secrets?: NonNullable<BackupJobConfigInput["azureSecrets"]>;
}> {
  const ref = azure.credentialsSecretRef;
  const field = "spec.destination.azureBlob.credentialsSecretRef";
  let account = azure.account;
  let secrets: NonNullable<BackupJobConfigInput["azureSecrets"]> | undefined;
  if (ref) {
    const data = await ctx.reader.secret(ctx.namespace, ref.name);
    if (!data) {
      throw new SpecProblem(
        Reason.SecretNotFound,
        `Secret ${ctx.namespace}/${ref.name} (${field}) not found: create it in namespace ${ctx.namespace} or fix ${field}`,
      );
    }
    const text = (key: string) => data[key]?.toString("utf8").trim() || undefined;
    const keyName = ref.accountKeyKey ?? "AZURE_STORAGE_KEY";
    const sasName = ref.sasTokenKey ?? "AZURE_STORAGE_SAS_TOKEN";
    const accountKey = text(keyName);
    const sasToken = accountKey ? undefined : text(sasName);
    if (!accountKey && !sasToken) {
      const known = Object.keys(data).sort().join(", ") || "none";
      throw new SpecProblem(
        Reason.KeyNotFound,
        `Secret ${ctx.namespace}/${ref.name} has neither ${JSON.stringify(keyName)} nor ${JSON.stringify(sasName)} (${field}); its keys: ${known}`,
      );
    }
    account ??= text(ref.accountNameKey ?? "AZURE_STORAGE_ACCOUNT");
    secrets = accountKey ? { accountKey } : { sasToken: sasToken! };
  }
  return {
    destination: `azblob://${azure.container}/${azure.prefix ?? ""}`,
    settings: {
      ...(account ? { account } : {}),
      ...(azure.endpoint ? { endpoint: azure.endpoint } : {}),
    },
    ...(secrets ? { secrets } : {}),
  };
}

/**
 * The GCS destination of a spec: the destination URL, its settings, and the Secret's service-account key (its
 * contents, checked by the job's builder; the label names the Secret, never the key).
 */
async function gcsFromSpec(
  gcs: GcsDestinationSpec,
  ctx: ResolveContext,
): Promise<{
  destination: string;
  gcs: NonNullable<BackupJobConfigInput["gcs"]>;
  gcsSecrets?: NonNullable<BackupJobConfigInput["gcsSecrets"]>;
}> {
  const ref = gcs.credentialsSecretRef;
  const key = ref?.key ?? "key.json";
  const credentialsJson = ref
    ? (await secretKey(ctx, ref.name, key, "spec.destination.gcs.credentialsSecretRef")).toString("utf8")
    : undefined;
  return {
    destination: `gs://${gcs.bucket}/${gcs.prefix ?? ""}`,
    gcs: {
      ...(gcs.endpoint ? { endpoint: gcs.endpoint } : {}),
      ...(gcs.project ? { project: gcs.project } : {}),
    },
    ...(ref && credentialsJson
      ? { gcsSecrets: { credentialsJson, label: `Secret ${ctx.namespace}/${ref.name} key ${key}` } }
      : {}),
  };
}

/**
 * The destination's store. `rootOnly` opens the bucket's or container's root instead of the spec's prefix (to
 * delete by a full key). Without a credentials Secret the SDKs' default chains apply (IRSA, pod identity, Azure
 * workload identity, managed identity, Google's Application Default Credentials).
 */
export async function resolveStore(
  destination: DestinationSpec,
  ctx: ResolveContext,
  rootOnly = false,
): Promise<OperatorStore> {
  if (destination.gcs) {
    const gcs = destination.gcs;
    const { gcs: settings, gcsSecrets } = await gcsFromSpec(gcs, ctx);
    const objectLock = lockOf(gcs.objectLock);
    try {
      return new GcsStore({
        bucket: gcs.bucket,
        prefix: rootOnly ? "" : (gcs.prefix ?? ""),
        settings: { ...settings, ...(objectLock ? { objectLock } : {}) },
        ...(gcsSecrets
          ? { credentials: parseGcsCredentials(gcsSecrets.credentialsJson, gcsSecrets.label) }
          : {}),
      });
    } catch (err) {
      throw new SpecProblem(Reason.InvalidSpec, `spec.destination.gcs: ${describeError(err)}`, {
        cause: err,
      });
    }
  }
  if (destination.azureBlob) {
    const azure = destination.azureBlob;
    const { settings, secrets } = await azureFromSpec(azure, ctx);
    try {
      const objectLock = lockOf(azure.objectLock);
      return new AzureBlobStore({
        container: azure.container,
        prefix: rootOnly ? "" : (azure.prefix ?? ""),
        settings: { ...settings, ...(objectLock ? { objectLock } : {}) },
        ...(secrets ? { secrets } : {}),
        warn: ctx.warn,
      });
    } catch (err) {
      throw new SpecProblem(Reason.InvalidSpec, `spec.destination.azureBlob: ${describeError(err)}`, {
        cause: err,
      });
    }
  }
  const s3 = s3Of(destination);
  const { settings, secrets } = await s3FromSpec(s3, ctx);
  try {
    return new S3Store({
      bucket: s3.bucket,
      prefix: rootOnly ? "" : (s3.prefix ?? ""),
      settings,
      ...(secrets?.credentials ? { credentials: secrets.credentials } : {}),
      ...(secrets?.caPem ? { caPem: secrets.caPem } : {}),
      warn: ctx.warn,
    });
  } catch (err) {
    throw new SpecProblem(Reason.InvalidSpec, `spec.destination.s3: ${describeError(err)}`, { cause: err });
  }
}
