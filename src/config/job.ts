import { readFile } from "node:fs/promises";
import {
  createDecryptStream,
  createEncryptStream,
  type Identity,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  passphraseIdentity,
  passphraseRecipient,
  type Recipient,
} from "../age/index.ts";
import type { EncryptionPlan } from "../backup/save.ts";
import type { RetentionPolicy } from "../catalog/retention.ts";
import { Hinted, UsageError } from "../errors.ts";
import type { DecryptionFactory } from "../restore/plain-stream.ts";
import { EtcdSource } from "../source/etcd.ts";
import type { SnapshotSource } from "../source/source.ts";
import { TalosSource } from "../source/talos.ts";
import type { Compression } from "../stages/compress.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { findTalosconfig, loadTalosContext, talosconfigCandidates } from "../talos/config.ts";
import type { BackupJobConfig } from "./schema.ts";

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

  let source: SnapshotSource;
  if (config.source.kind === "etcd") {
    const s = config.source;
    if (s.insecureSkipTlsVerify) {
      warn(
        "etcd's certificate is not verified (--insecure-skip-tls-verify); anyone on the path can read the snapshot",
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
  } else {
    const s = config.source;
    const candidates = talosconfigCandidates(s.talosconfig, env);
    const path = await findTalosconfig(candidates);
    if (!path) {
      throw new UsageError(
        `no talosconfig found (looked at ${candidates.join(", ")})`,
        "pass --talosconfig FILE or set TALOSCONFIG; in a pod, mount a Talos ServiceAccount's secret",
      );
    }
    const context = await loadTalosContext(path, s.context);
    secrets.push(context.key.toString("utf8").trim());
    source = new TalosSource({
      context,
      endpoints: s.endpoints.length ? s.endpoints : context.endpoints,
      nodes: s.nodes.length ? s.nodes : context.nodes,
    });
  }

  const store = openStore(config.destination, /^s3:\/\//i.test(config.destination) ? config.s3 : undefined);
  if (config.s3.insecureSkipTlsVerify && /^s3:\/\//i.test(config.destination)) {
    warn("the S3 endpoint's certificate is not verified (--s3-insecure-skip-tls-verify)");
  }

  let encryption: EncryptionPlan | null = null;
  if (config.encryption.kind === "age") {
    const recipients: Recipient[] = [];
    for (const r of config.encryption.recipients) recipients.push(parseRecipient(r));
    for (const file of config.encryption.recipientsFiles) {
      recipients.push(...parseRecipientsFile(await readConfigured(file, "--recipients-file")));
    }
    if (config.encryption.passphraseFile) {
      const pass = await readPassphrase(config.encryption.passphraseFile);
      secrets.push(pass);
      recipients.push(passphraseRecipient(pass));
    }
    if (recipients.length === 0) {
      throw new UsageError(
        "no age recipient given: backups hold every Secret of the cluster and are encrypted by default",
        "pass --recipient age1..., --recipients-file, --passphrase-file, or --no-encrypt",
      );
    }
    encryption = {
      createStage: () => createEncryptStream(recipients),
      recipients: recipients.map((r) => ({
        kind: r.kind,
        ...(r.publicKey ? { publicKey: r.publicKey } : {}),
      })),
    };
  }

  const identities: Identity[] = [];
  for (const file of config.decryption.identityFiles) {
    const text = await readConfigured(file, "--identity");
    for (const line of text.split(/\r?\n/))
      if (line.trim() && !line.startsWith("#")) secrets.push(line.trim());
    identities.push(...parseIdentities(text));
  }
  if (config.decryption.passphraseFile) {
    const pass = await readPassphrase(config.decryption.passphraseFile);
    if (!secrets.includes(pass)) secrets.push(pass);
    identities.push(passphraseIdentity(pass));
  }

  return {
    cluster: config.cluster,
    source,
    store,
    compression: config.compression,
    ...(config.level !== undefined ? { level: config.level } : {}),
    encryption,
    ...(identities.length > 0 ? { decrypt: () => createDecryptStream(identities) } : {}),
    retention: config.retention,
    incompleteGraceMs: config.incompleteGraceMs,
    secrets: secrets.filter((s) => s.length >= 4),
  };
}

async function readConfigured(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new Hinted(
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      `check ${what}`,
    );
  }
}

async function readPassphrase(path: string): Promise<string> {
  const pass = (await readConfigured(path, "--passphrase-file")).split(/\r?\n/)[0] ?? "";
  if (!pass)
    throw new UsageError(`--passphrase-file ${path} is empty`, "write the passphrase on its first line");
  return pass;
}
