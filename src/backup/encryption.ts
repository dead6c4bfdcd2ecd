import { readFile } from "node:fs/promises";
import {
  checkRecipients,
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
import { Hinted, UsageError } from "../errors.ts";
import type { DecryptionFactory, EncryptionPlan } from "../stages/encryption.ts";

/** Where encryption keys come from, as the CLI flags, a config file or a CRD spec name them. */
export interface EncryptionKeySources {
  /** age1... public keys. */
  recipients?: string[];
  /** Files in age's recipients format. */
  recipientsFiles?: string[];
  /** A file whose first line is the passphrase. */
  passphraseFile?: string;
}

export interface DecryptionKeySources {
  /** Files in age-keygen's identity format. */
  identityFiles?: string[];
  passphraseFile?: string;
}

/** The secrets read while loading keys, for log redaction; never to be printed. */
export type SecretSink = (secret: string) => void;

async function readKeyFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new Hinted(
      `cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      `check ${flag}`,
    );
  }
}

/** A passphrase file's first line, without the newline. */
async function readPassphraseFile(path: string): Promise<string> {
  const pass = (await readKeyFile(path, "--passphrase-file")).split(/\r?\n/)[0] ?? "";
  if (!pass)
    throw new UsageError(`--passphrase-file ${path} is empty`, "write the passphrase on its first line");
  return pass;
}

/**
 * The encryption a save applies. Encryption is on by default: `encrypt: false` is the only way to get
 * none, and contradicts any key given; with no key at all it refuses (UsageError).
 */
export async function encryptionPlan(
  keys: EncryptionKeySources,
  options: { encrypt: boolean; onSecret?: SecretSink },
): Promise<EncryptionPlan | null> {
  const recipients: Recipient[] = [];
  for (const r of keys.recipients ?? []) recipients.push(parseRecipient(r));
  for (const file of keys.recipientsFiles ?? []) {
    recipients.push(...parseRecipientsFile(await readKeyFile(file, "--recipients-file")));
  }
  if (keys.passphraseFile) {
    if (recipients.length > 0) {
      throw new UsageError(
        "a passphrase cannot be combined with recipients",
        "use either --passphrase-file or --recipient",
      );
    }
    const pass = await readPassphraseFile(keys.passphraseFile);
    options.onSecret?.(pass);
    recipients.push(passphraseRecipient(pass));
  }
  if (!options.encrypt) {
    if (recipients.length > 0) {
      throw new UsageError(
        "--no-encrypt contradicts the recipients given",
        "drop --no-encrypt or the recipients",
      );
    }
    return null;
  }
  if (recipients.length === 0) {
    throw new UsageError(
      "no age recipient given: backups hold every Secret of the cluster and are encrypted by default",
      "pass --recipient age1... (see `etcd-backup keygen`), --recipients-file, --passphrase-file, or --no-encrypt",
    );
  }
  checkRecipients(recipients); // post-quantum and classic recipients do not mix: refused before any work
  return {
    createStage: () => createEncryptStream(recipients),
    recipients: recipients.map((r) => ({ kind: r.kind, ...(r.publicKey ? { publicKey: r.publicKey } : {}) })),
  };
}

/** The decryption stage factory, or undefined when no key was given (plain backups need none). */
export async function decryptionFactory(
  keys: DecryptionKeySources,
  options: { onSecret?: SecretSink } = {},
): Promise<DecryptionFactory | undefined> {
  const identities: Identity[] = [];
  for (const file of keys.identityFiles ?? []) {
    const text = await readKeyFile(file, "--identity");
    for (const line of text.split(/\r?\n/))
      if (line.trim() && !line.startsWith("#")) options.onSecret?.(line.trim());
    identities.push(...parseIdentities(text));
  }
  if (keys.passphraseFile) {
    const pass = await readPassphraseFile(keys.passphraseFile);
    options.onSecret?.(pass);
    identities.push(passphraseIdentity(pass));
  }
  if (identities.length === 0) return undefined;
  return () => createDecryptStream(identities);
}

/**
 * The identities in age identity files (for `rekey`, which needs the identities themselves rather than a
 * decryption stage); every secret line goes to `onSecret` for redaction.
 */
export async function loadIdentities(
  files: string[],
  options: { onSecret?: SecretSink } = {},
): Promise<Identity[]> {
  const identities: Identity[] = [];
  for (const file of files) {
    const text = await readKeyFile(file, "--identity");
    for (const line of text.split(/\r?\n/))
      if (line.trim() && !line.startsWith("#")) options.onSecret?.(line.trim());
    identities.push(...parseIdentities(text));
  }
  return identities;
}

/** The recipients named by `--recipient` values and `--recipients-file` files (public keys only). */
export async function loadRecipients(keys: EncryptionKeySources): Promise<Recipient[]> {
  const recipients: Recipient[] = [];
  for (const r of keys.recipients ?? []) recipients.push(parseRecipient(r));
  for (const file of keys.recipientsFiles ?? []) {
    recipients.push(...parseRecipientsFile(await readKeyFile(file, "--recipients-file")));
  }
  return recipients;
}
