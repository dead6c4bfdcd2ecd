import { decryptionFactory, encryptionPlan } from "../backup/encryption.ts";
import { clusterNameProblem } from "../catalog/names.ts";
import type { RetentionPolicy } from "../catalog/retention.ts";
import { UsageError } from "../errors.ts";
import { type NotifyEventKind, type NotifyTarget, notifyTargets, secretForms } from "../notify/target.ts";
import { EtcdSource } from "../source/etcd.ts";
import { FileSource } from "../source/file.ts";
import type { SnapshotSource } from "../source/source.ts";
import { TalosSource } from "../source/talos.ts";
import type { Compression } from "../stages/compress.ts";
import type { DecryptionFactory, EncryptionPlan } from "../stages/encryption.ts";
import { azureSecretsFromEnv } from "../store/azure-settings.ts";
import { parseGcsCredentials } from "../store/gcs-credentials.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import {
  findTalosconfig,
  loadTalosContext,
  parseTalosconfig,
  type TalosContext,
  talosconfigCandidates,
} from "../talos/config.ts";
import type { BackupJobConfig } from "./schema.ts";
import { talosBackupStoreDestination } from "./talos-backup.ts";

/** Everything one backup run needs, ready to use: what `saveBackup`, `pruneBackups` and the checks take. */
export interface BackupJob {
  cluster: string;
  source: SnapshotSource;
  store: Store;
  compression: Compression;
  level?: number;
  encryption: EncryptionPlan | null;
  /** Reads this job's backups back; undefined when no key was configured (then encrypted backups cannot be read). */
  decrypt?: DecryptionFactory;
  /** null: do not prune. */
  retention: RetentionPolicy | null;
  incompleteGraceMs: number;
  /** Where notifications go and which (src/notify/); no receiver: none are sent. */
  notify: { targets: NotifyTarget[]; on: NotifyEventKind[]; staleAfterMs?: number };
  /**
   * Secret values this job holds (etcd password, passphrase, age identity lines), so that a front end can keep
   * them out of every log line, page and error it shows. Never print this.
   */
  secrets: string[];
}

export interface JobEnvironment {
  env?: Record<string, string | undefined>;
  /** Receives warnings (TLS verification off); no secret is ever passed. */
  warn?: (line: string) => void;
  /** Receives progress lines of sources that report steps (the kubeconfig source: waiting for pod X, ...). */
  progress?: (line: string) => void;
}

/**
 * Builds a job's source from its configuration (reading the talosconfig for a Talos source, the kubeconfig for
 * the Kubernetes one). Secret values it reads are added to `secrets`. Also used alone by `save --out`, which
 * has no store.
 */
export async function sourceFromConfig(
  config: BackupJobConfig["source"],
  options: JobEnvironment & { env: Record<string, string | undefined>; warn: (line: string) => void },
  secrets: string[],
): Promise<{ source: SnapshotSource; contextName?: string }> {
  const { env, warn } = options;
  let source: SnapshotSource;
  let contextName: string | undefined;
  if (config.kind === "etcd") {
    const s = config;
    if (s.insecureSkipTlsVerify) {
      warn(
        "warning: --insecure-skip-tls-verify: etcd's certificate is not verified; anyone on the path can read the snapshot",
      );
    }
    if (s.user?.password) secrets.push(s.user.password);
    source = new EtcdSource({
      endpoints: s.endpoints,
      tls: {
        ...(s.cacert ? { caFile: s.cacert } : {}),
        ...(s.cert ? { certFile: s.cert } : {}),
        ...(s.key ? { keyFile: s.key } : {}),
        insecureSkipVerify: s.insecureSkipTlsVerify,
        ...(s.pem ? { pem: { ...s.pem, insecureSkipVerify: s.insecureSkipTlsVerify } } : {}),
      },
      dialTimeoutMs: s.dialTimeoutMs,
      ...(s.user ? { user: s.user } : {}),
    });
    if (s.pem?.key) secrets.push(s.pem.key.toString("utf8").trim());
  } else if (config.kind === "talos") {
    const s = config;
    let context: TalosContext;
    if (s.talosconfigText) {
      context = parseTalosconfig(s.talosconfigText.text, s.talosconfigText.label, s.context);
    } else {
      const candidates = talosconfigCandidates(s.talosconfig, env);
      const path = await findTalosconfig(candidates);
      if (!path) {
        throw new UsageError(
          `no talosconfig found (looked at ${candidates.join(", ")})`,
          "pass --talosconfig FILE or set TALOSCONFIG; in a pod, mount a Talos ServiceAccount's secret at /var/run/secrets/talos.dev",
        );
      }
      context = await loadTalosContext(path, s.context);
    }
    contextName = context.name;
    secrets.push(context.key.toString("utf8").trim());
    source = new TalosSource({
      context,
      endpoints: s.endpoints.length ? s.endpoints : context.endpoints,
      nodes: s.nodes.length ? s.nodes : context.nodes,
    });
  } else if (config.kind === "kubernetes") {
    const { KubeApi } = await import("../source/kubernetes/kube-api.ts");
    const { KubernetesSource } = await import("../source/kubernetes/source.ts");
    const { DEFAULT_HELPER_IMAGE } = await import("../source/kubernetes/helper-pod.ts");
    const api = KubeApi.load({
      ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}),
      ...(config.context ? { context: config.context } : {}),
      env,
    });
    secrets.push(...api.secretValues());
    source = new KubernetesSource({
      api,
      image: config.image ?? DEFAULT_HELPER_IMAGE,
      ...(options.progress ? { progress: options.progress } : {}),
    });
  } else {
    source = new FileSource(config.path);
  }
  return { source, ...(contextName ? { contextName } : {}) };
}

/**
 * Builds a job from its configuration: opens the store, builds the source (reading the talosconfig for a Talos
 * source), reads recipient, passphrase and identity files. Throws `UsageError`/`Hinted` naming what cannot be
 * used; the message never holds a secret.
 */
export async function backupJobFromConfig(
  config: BackupJobConfig,
  options: JobEnvironment = {},
): Promise<BackupJob> {
  const env = options.env ?? process.env;
  const warn = options.warn ?? (() => {});
  const secrets: string[] = [];

  const { source, contextName } = await sourceFromConfig(
    config.source,
    { env, warn, ...(options.progress ? { progress: options.progress } : {}) },
    secrets,
  );

  // As talos-backup: the Talos context names the cluster unless a name was given; its BUCKET and S3_PREFIX
  // name the destination unless one was given.
  const cluster =
    config.cluster ?? (contextName && clusterNameProblem(contextName) === null ? contextName : "etcd");
  const destination = config.destination ?? talosBackupStoreDestination(env, cluster);
  if (!destination) {
    throw new UsageError(
      "no destination given",
      "pass --to DIR, --to s3://bucket/prefix or --to gs://bucket/prefix (or talos-backup's BUCKET)",
    );
  }
  const gcsCredentials = config.gcsSecrets
    ? parseGcsCredentials(config.gcsSecrets.credentialsJson, config.gcsSecrets.label)
    : undefined;
  if (gcsCredentials) secrets.push(...gcsCredentials.secrets);
  // The lock goes to whichever object store the destination is (each maps it onto its own feature).
  const objectLock = config.objectLock ? { objectLock: config.objectLock } : {};
  const store = openStore(
    destination,
    /^s3:\/\//i.test(destination) ? { ...config.s3, ...objectLock } : undefined,
    {
      ...(config.s3Secrets?.credentials ? { credentials: config.s3Secrets.credentials } : {}),
      ...(config.s3Secrets?.caPem ? { caPem: config.s3Secrets.caPem } : {}),
      warn,
      gcs: {
        settings: { ...config.gcs, ...objectLock },
        ...(gcsCredentials ? { credentials: gcsCredentials } : {}),
        env,
      },
    },
    // Azure credentials: the operator's Secret when it gave one, else the environment's, else the SDK's chain.
    {
      settings: { ...config.azure, ...objectLock },
      secrets: config.azureSecrets ?? azureSecretsFromEnv(env),
      onSecret: (secret) => secrets.push(secret),
    },
  );
  if (config.s3Secrets?.credentials) {
    secrets.push(config.s3Secrets.credentials.secretAccessKey);
    if (config.s3Secrets.credentials.sessionToken) secrets.push(config.s3Secrets.credentials.sessionToken);
  }
  if (config.s3.insecureSkipTlsVerify && /^s3:\/\//i.test(destination)) {
    warn(
      "warning: --s3-insecure-skip-tls-verify: the S3 endpoint's certificate is not verified; anyone on the path can read or change backups",
    );
  }

  const onSecret = (secret: string) => {
    if (!secrets.includes(secret)) secrets.push(secret);
  };
  const encryption = await encryptionPlan(
    {
      recipients: config.encryption.kind === "age" ? config.encryption.recipients : [],
      recipientsFiles: config.encryption.kind === "age" ? config.encryption.recipientsFiles : [],
      ...(config.encryption.kind === "age" && config.encryption.passphraseFile
        ? { passphraseFile: config.encryption.passphraseFile }
        : {}),
    },
    { encrypt: config.encryption.kind === "age", onSecret },
  );
  const decrypt = await decryptionFactory(
    {
      identityFiles: config.decryption.identityFiles,
      ...(config.decryption.passphraseFile ? { passphraseFile: config.decryption.passphraseFile } : {}),
    },
    { onSecret },
  );

  // Receivers' URLs carry their tokens: every form of them is a secret.
  for (const url of config.notify.urls) secrets.push(...secretForms(url));
  const notify = {
    targets: notifyTargets(config.notify.urls, config.notify.format),
    on: config.notify.on,
    ...(config.notify.staleAfterMs !== undefined ? { staleAfterMs: config.notify.staleAfterMs } : {}),
  };

  return {
    cluster,
    source,
    store,
    notify,
    compression: config.compression,
    ...(config.level !== undefined ? { level: config.level } : {}),
    encryption,
    ...(decrypt ? { decrypt } : {}),
    retention: config.retention,
    incompleteGraceMs: config.incompleteGraceMs,
    secrets: secrets.filter((s) => s.length >= 4),
  };
}
