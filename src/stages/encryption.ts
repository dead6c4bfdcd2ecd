import type { Transform } from "node:stream";

/*
 * The encryption stages as the data path sees them: factories of Transforms, built from keys by whoever holds
 * them (backup/encryption.ts from flags, files or a CRD's Secrets), so save, restore and the readers never
 * handle a key.
 */

/** How the stored bytes are encrypted: a stage factory and what the manifest may say about the recipients. */
export interface EncryptionPlan {
  createStage(): Transform;
  /** Public descriptions only (kind, X25519 public key); never a secret. */
  recipients: { kind: string; publicKey?: string }[];
}

/** Decrypts a backup's bytes; built from the user's identities by the front end. */
export type DecryptionFactory = () => Transform;
