/**
 * The base64 flavour of the age header: standard alphabet, no padding, and only the canonical
 * encoding of each value is accepted (unused trailing bits must be zero).
 */

const ALPHABET = /^[A-Za-z0-9+/]*$/;

/** Standard base64 without `=` padding. */
export function encodeUnpadded(bytes: Uint8Array): string {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const pad = s.endsWith("==") ? 2 : s.endsWith("=") ? 1 : 0;
  return pad ? s.slice(0, s.length - pad) : s;
}

/** Decodes unpadded base64; returns null for any character outside the alphabet or a non-canonical encoding. */
export function decodeCanonical(s: string): Buffer | null {
  if (s.length % 4 === 1 || !ALPHABET.test(s)) return null;
  const bytes = Buffer.from(s, "base64");
  return encodeUnpadded(bytes) === s ? bytes : null;
}
