/**
 * The age v1 file format (age-encryption.org/v1) on node:crypto: X25519, post-quantum hybrid
 * (MLKEM768-X25519) and passphrase (scrypt) recipients, streaming encryption and decryption in 64 KiB chunks, and the ASCII armor.
 */
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createDecryptStream } from "./decrypt.ts";
import { createEncryptStream } from "./encrypt.ts";
import { DEFAULT_LOG_N, DEFAULT_MAX_LOG_N, ScryptIdentity, ScryptRecipient } from "./scrypt.ts";
import type { Identity, Recipient } from "./types.ts";

export { createDecryptStream } from "./decrypt.ts";
export { checkRecipients, createEncryptStream, type EncryptOptions } from "./encrypt.ts";
export { AgeDecryptError, type AgeFailure, AgeKeyError } from "./errors.ts";
export {
  generateIdentity,
  identityFileText,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  recipientOf,
} from "./keys.ts";
export { checkHeader, type OpenedHeader, readHeaderFrom, rewrapHeader, unwrapFileKey } from "./rekey.ts";
export type { Identity, Recipient, Stanza } from "./types.ts";

/**
 * A passphrase recipient. `logN` is the scrypt work factor, 18 by default as age uses; the
 * stanza it produces must be alone, so it cannot be combined with other recipients.
 */
export function passphraseRecipient(passphrase: string, logN: number = DEFAULT_LOG_N): Recipient {
  return new ScryptRecipient(passphrase, logN);
}

/** A passphrase identity; refuses (header failure) files whose work factor exceeds 2^`maxLogN` (22). */
export function passphraseIdentity(passphrase: string, maxLogN: number = DEFAULT_MAX_LOG_N): Identity {
  return new ScryptIdentity(passphrase, maxLogN);
}

async function run(data: Uint8Array, transform: NodeJS.ReadWriteStream): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  await pipeline(
    Readable.from(input.length ? [input] : []),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        parts.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(parts);
}

/** Encrypts `data` to `recipients` (the stream path, collected). */
export async function encrypt(data: Uint8Array, recipients: Recipient[]): Promise<Uint8Array> {
  return run(data, createEncryptStream(recipients));
}

/** Decrypts a binary or armored age file; rejects with an `AgeDecryptError` as the stream does. */
export async function decrypt(data: Uint8Array, identities: Identity[]): Promise<Uint8Array> {
  return run(data, createDecryptStream(identities));
}
