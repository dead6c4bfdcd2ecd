import { timingSafeEqual } from "node:crypto";
import { poly1305 } from "./poly1305.ts";
import { xsalsa20Xor } from "./xsalsa20.ts";

/**
 * NaCl secretbox (XSalsa20-Poly1305) as Go's golang.org/x/crypto/nacl/secretbox lays it out: a 16-byte
 * Poly1305 tag, then the ciphertext. The first 32 bytes of the XSalsa20 stream are the Poly1305 key; the
 * message is XORed with the stream from byte 32 on.
 */

const TAG_SIZE = 16;

/** Opens a box. Throws "secretbox authentication failed" when the key, nonce or box is wrong. */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  if (box.length < TAG_SIZE) throw new Error("secretbox too short");
  const polyKey = xsalsa20Xor(key, nonce, new Uint8Array(32));
  const ciphertext = box.subarray(TAG_SIZE);
  if (!timingSafeEqual(poly1305(polyKey, ciphertext), box.subarray(0, TAG_SIZE)))
    throw new Error("secretbox authentication failed");
  return xsalsa20Xor(key, nonce, ciphertext, 32);
}

/** Seals `message` into a box (tag then ciphertext) under a 32-byte key and a 24-byte nonce never used before. */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  const polyKey = xsalsa20Xor(key, nonce, new Uint8Array(32));
  const ciphertext = xsalsa20Xor(key, nonce, message, 32);
  return Buffer.concat([poly1305(polyKey, ciphertext), ciphertext]);
}
