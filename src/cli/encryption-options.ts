import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
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
import { Hinted, UsageError } from "../errors.ts";
import type { DecryptionFactory } from "../restore/plain-stream.ts";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Flags that choose how `save` encrypts: age recipients, a passphrase, or an explicit --no-encrypt. */
export function addEncryptOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--recipient <age1...>", "age public key to encrypt to (repeatable)").argParser(collect),
    )
    .addOption(
      new Option("--recipients-file <file>", "file of age public keys, one per line (repeatable)").argParser(
        collect,
      ),
    )
    .addOption(new Option("--passphrase-file <file>", "encrypt with the passphrase in this file (scrypt)"))
    .addOption(
      new Option("--no-encrypt", "store the backup unencrypted (it holds every Secret of the cluster)"),
    )
    .addOption(new Option("--age-recipient-env <list>").env("ETCD_BACKUP_RECIPIENTS").hideHelp());
}

export interface EncryptFlags {
  recipient?: string[];
  recipientsFile?: string[];
  passphraseFile?: string;
  encrypt: boolean;
  ageRecipientEnv?: string;
}

async function readUserFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new Hinted(
      `cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      `check ${flag}`,
    );
  }
}

/** Reads a passphrase file: its first line, without the newline. Never echoed anywhere. */
async function readPassphrase(path: string): Promise<string> {
  const text = await readUserFile(path, "--passphrase-file");
  const pass = text.split(/\r?\n/)[0] ?? "";
  if (!pass)
    throw new UsageError(`--passphrase-file ${path} is empty`, "write the passphrase on its first line");
  return pass;
}

/**
 * The encryption `save` applies. Encryption is on by default: with no recipient and no passphrase it
 * refuses to run unless --no-encrypt was given.
 */
export async function encryptionPlanFromFlags(
  flags: EncryptFlags,
  env = process.env,
): Promise<EncryptionPlan | null> {
  const recipients: Recipient[] = [];
  const keys = [
    ...(flags.recipient ?? []),
    ...(flags.ageRecipientEnv ?? env.ETCD_BACKUP_RECIPIENTS ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  ];
  for (const r of keys) recipients.push(parseRecipient(r));
  for (const file of flags.recipientsFile ?? []) {
    recipients.push(...parseRecipientsFile(await readUserFile(file, "--recipients-file")));
  }
  if (flags.passphraseFile) {
    if (recipients.length > 0) {
      throw new UsageError(
        "a passphrase cannot be combined with recipients",
        "use either --passphrase-file or --recipient",
      );
    }
    recipients.push(passphraseRecipient(await readPassphrase(flags.passphraseFile)));
  }
  if (!flags.encrypt) {
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
  return {
    createStage: () => createEncryptStream(recipients),
    recipients: recipients.map((r) => ({ kind: r.kind, ...(r.publicKey ? { publicKey: r.publicKey } : {}) })),
  };
}

/** Flags that give the keys to decrypt with. */
export function addDecryptOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("-i, --identity <file>", "age identity file (age-keygen format; repeatable)")
        .argParser(collect)
        .env("ETCD_BACKUP_IDENTITY"),
    )
    .addOption(new Option("--passphrase-file <file>", "decrypt with the passphrase in this file"));
}

export interface DecryptFlags {
  identity?: string[] | string;
  passphraseFile?: string;
}

/** The decryption stage factory, or undefined when no key was given (plain backups need none). */
export async function decryptionFromFlags(flags: DecryptFlags): Promise<DecryptionFactory | undefined> {
  const identities: Identity[] = [];
  const files = typeof flags.identity === "string" ? [flags.identity] : (flags.identity ?? []);
  for (const file of files) identities.push(...parseIdentities(await readUserFile(file, "--identity")));
  if (flags.passphraseFile) identities.push(passphraseIdentity(await readPassphrase(flags.passphraseFile)));
  if (identities.length === 0) return undefined;
  return () => createDecryptStream(identities);
}
