import { type Command, Option } from "commander";
import { processRedactor } from "../observability/redact.ts";
import type { DecryptionFactory, EncryptionPlan } from "../stages/encryption.ts";

/** Passphrases and identity lines read from files are never echoed by anything this process prints. */
const onSecret = (secret: string) => {
  processRedactor.add(secret);
};

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

/**
 * The encryption `save` applies. Encryption is on by default: with no recipient and no passphrase it
 * refuses to run unless --no-encrypt was given.
 */
export async function encryptionPlanFromFlags(
  flags: EncryptFlags,
  env = process.env,
): Promise<EncryptionPlan | null> {
  const fromEnv = (flags.ageRecipientEnv ?? env.ETCD_BACKUP_RECIPIENTS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  // The age implementation is loaded by the commands that use it, not at start.
  const { encryptionPlan } = await import("../backup/encryption.ts");
  return await encryptionPlan(
    {
      recipients: [...(flags.recipient ?? []), ...fromEnv],
      recipientsFiles: flags.recipientsFile ?? [],
      ...(flags.passphraseFile ? { passphraseFile: flags.passphraseFile } : {}),
    },
    { encrypt: flags.encrypt, onSecret },
  );
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
  const files = typeof flags.identity === "string" ? [flags.identity] : (flags.identity ?? []);
  // No key given: nothing to decrypt with, and no need to load the age implementation.
  if (files.length === 0 && !flags.passphraseFile) return undefined;
  const { decryptionFactory } = await import("../backup/encryption.ts");
  return await decryptionFactory(
    {
      identityFiles: files,
      ...(flags.passphraseFile ? { passphraseFile: flags.passphraseFile } : {}),
    },
    { onSecret },
  );
}
