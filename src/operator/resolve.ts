import { join } from "node:path";
import { createEncryptStream, parseRecipient, parseRecipientsFile, type Recipient } from "../age/index.ts";
import { describeError } from "../errors.ts";
import { EtcdSource } from "../source/etcd.ts";
import type { SnapshotSource } from "../source/source.ts";
import { TalosSource } from "../source/talos.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import { S3Store } from "../store/s3.ts";
import {
  loadTalosContext,
  parseTalosconfig,
  SERVICE_ACCOUNT_DIR,
  type TalosContext,
} from "../talos/config.ts";
import { type EtcdBackupSpec, Reason, type S3DestinationSpec } from "./api.ts";

/**
 * Turns a spec into the library's objects (source, store, encryption), reading the Secrets and ConfigMaps it
 * names from the object's own namespace only. Every user mistake becomes a `SpecProblem` with a reason and a
 * message that says what to fix; key material never appears in one.
 */

/** What the operator may read: Secrets and ConfigMaps, by namespace and name. */
export interface ConfigReader {
  secret(namespace: string, name: string): Promise<Record<string, Buffer> | null>;
  configMap(namespace: string, name: string): Promise<Record<string, string> | null>;
}

/** A failure with a condition reason (`SecretNotFound`, `InvalidRecipient`...). */
export class SpecProblem extends Error {
  override name = "SpecProblem";
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** The condition reason of a failure: a `SpecProblem`'s own, otherwise `fallback`. */
export function reasonOf(err: unknown, fallback: string): string {
  return err instanceof SpecProblem ? err.reason : fallback;
}

export interface ResolveContext {
  namespace: string;
  reader: ConfigReader;
  /** Where a Talos ServiceAccount's talosconfig is mounted (`/var/run/secrets/talos.dev`). */
  talosServiceAccountDir?: string;
  warn: (line: string) => void;
}

async function secretKey(ctx: ResolveContext, name: string, key: string, field: string): Promise<Buffer> {
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

export async function resolveSource(spec: EtcdBackupSpec, ctx: ResolveContext): Promise<SnapshotSource> {
  const { etcd, talos } = spec.source;
  if (etcd) {
    const ref = etcd.tlsSecretRef;
    const field = "spec.source.etcd.tlsSecretRef";
    const pem = ref
      ? {
          ca: await secretKey(ctx, ref.name, ref.caKey ?? "ca.crt", field),
          cert: await secretKey(ctx, ref.name, ref.certKey ?? "tls.crt", field),
          key: await secretKey(ctx, ref.name, ref.keyKey ?? "tls.key", field),
        }
      : undefined;
    return new SourceProblems(
      new EtcdSource({
        endpoints: etcd.endpoints,
        tls: { ...(pem ? { pem } : {}), insecureSkipVerify: etcd.insecureSkipVerify ?? false },
        dialTimeoutMs: (etcd.dialTimeoutSeconds ?? 10) * 1000,
      }),
    );
  }
  if (talos) {
    let context: TalosContext;
    try {
      if (talos.inCluster) {
        const path = join(ctx.talosServiceAccountDir ?? SERVICE_ACCOUNT_DIR, "config");
        context = await loadTalosContext(path, talos.context);
      } else {
        const ref = talos.talosconfigSecretRef!;
        const key = ref.key ?? "config";
        const text = await secretKey(ctx, ref.name, key, "spec.source.talos.talosconfigSecretRef");
        context = parseTalosconfig(
          text.toString("utf8"),
          `Secret ${ctx.namespace}/${ref.name} key ${key}`,
          talos.context,
        );
      }
    } catch (err) {
      if (err instanceof SpecProblem) throw err;
      const hint = talos.inCluster
        ? "give the operator's pod a Talos ServiceAccount with role os:etcd:backup, or use talosconfigSecretRef"
        : "put a talosconfig with client certificates in the Secret";
      throw new SpecProblem(Reason.InvalidSpec, `talosconfig unusable: ${describeError(err)} (${hint})`, {
        cause: err,
      });
    }
    const endpoints = talos.endpoints?.length ? talos.endpoints : context.endpoints;
    const nodes = talos.nodes?.length ? talos.nodes : context.nodes.slice(0, 1);
    try {
      return new SourceProblems(new TalosSource({ context, endpoints, nodes }));
    } catch (err) {
      throw new SpecProblem(Reason.InvalidSpec, describeError(err), { cause: err });
    }
  }
  throw new SpecProblem(Reason.InvalidSpec, "spec.source: set etcd or talos");
}

/**
 * The S3 store. `rootOnly` opens the bucket's root instead of the spec's prefix (to delete by a full key).
 * Without a credentials Secret the SDK's default chain applies (IRSA, pod identity, environment).
 */
export async function resolveStore(
  s3: S3DestinationSpec,
  ctx: ResolveContext,
  rootOnly = false,
): Promise<S3Store> {
  const creds = s3.credentialsSecretRef;
  const field = "spec.destination.s3.credentialsSecretRef";
  const credentials = creds
    ? {
        accessKeyId: (await secretKey(ctx, creds.name, creds.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID", field))
          .toString("utf8")
          .trim(),
        secretAccessKey: (
          await secretKey(ctx, creds.name, creds.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY", field)
        )
          .toString("utf8")
          .trim(),
        ...(creds.sessionTokenKey
          ? {
              sessionToken: (await secretKey(ctx, creds.name, creds.sessionTokenKey, field))
                .toString("utf8")
                .trim(),
            }
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
  try {
    return new S3Store({
      bucket: s3.bucket,
      prefix: rootOnly ? "" : (s3.prefix ?? ""),
      settings: {
        ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
        ...(s3.region ? { region: s3.region } : {}),
        ...(s3.pathStyle !== undefined ? { pathStyle: s3.pathStyle } : {}),
        ...(s3.insecureSkipVerify ? { insecureSkipTlsVerify: true } : {}),
      },
      ...(credentials ? { credentials } : {}),
      ...(caPem ? { caPem } : {}),
      warn: ctx.warn,
    });
  } catch (err) {
    throw new SpecProblem(Reason.InvalidSpec, `spec.destination.s3: ${describeError(err)}`, { cause: err });
  }
}

/** The age encryption, or null for `none: true`. */
export async function resolveEncryption(
  spec: EtcdBackupSpec,
  ctx: ResolveContext,
): Promise<EncryptionPlan | null> {
  const e = spec.encryption;
  const recipients: Recipient[] = [];
  for (const [i, r] of (e.recipients ?? []).entries()) {
    try {
      recipients.push(parseRecipient(r));
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
      recipients.push(...parseRecipientsFile(text));
    } catch (err) {
      throw new SpecProblem(Reason.InvalidRecipient, `${field}: ${describeError(err)}`);
    }
  }
  if (e.none === true) {
    if (recipients.length > 0) {
      throw new SpecProblem(
        Reason.InvalidSpec,
        "spec.encryption: none: true contradicts the recipients given",
      );
    }
    return null;
  }
  if (recipients.length === 0) {
    throw new SpecProblem(
      Reason.InvalidSpec,
      "spec.encryption: no age recipient (backups hold every Secret of the cluster): add recipients, or none: true",
    );
  }
  return {
    createStage: () => createEncryptStream(recipients),
    recipients: recipients.map((r) => ({ kind: r.kind, ...(r.publicKey ? { publicKey: r.publicKey } : {}) })),
  };
}
