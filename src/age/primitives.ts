/**
 * The two primitives every age component is built on, both from node:crypto:
 * HKDF-SHA256 and ChaCha20-Poly1305 with a 16-byte tag.
 */
import { createCipheriv, createDecipheriv, hkdfSync, type KeyObject } from "node:crypto";

/** Length of a ChaCha20-Poly1305 authentication tag. */
export const TAG_SIZE = 16;

/** ChaCha20-Poly1305 nonce used where every key encrypts exactly one message (stanza bodies). */
export const ZERO_NONCE: Buffer = Buffer.alloc(12);

/** HKDF-SHA256(ikm, salt, info) truncated to `length` bytes (32 by default). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, length));
}

/** Encrypts `plaintext` and returns the ciphertext and the tag as two buffers (no copy to join them). */
export function sealParts(
  key: Uint8Array | KeyObject,
  nonce: Uint8Array,
  plaintext: Uint8Array,
): [Buffer, Buffer] {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return [ciphertext, cipher.getAuthTag()];
}

/** Encrypts `plaintext`; returns ciphertext followed by the tag. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Buffer {
  return Buffer.concat(sealParts(key, nonce, plaintext));
}

/**
 * Decrypts `sealed` (ciphertext followed by the tag). Returns null when the tag does not verify;
 * the plaintext is only returned once the tag has been checked.
 */
export function open(key: Uint8Array | KeyObject, nonce: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < TAG_SIZE) return null;
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return plaintext;
}
