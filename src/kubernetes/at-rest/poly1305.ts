/**
 * Poly1305 (RFC 8439 section 2.5), the one-time authenticator of NaCl's secretbox. node:crypto only has it
 * inside chacha20-poly1305. Written with bigint: it authenticates Kubernetes objects of a few kilobytes.
 */

const P = (1n << 130n) - 5n;
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;
const MASK128 = (1n << 128n) - 1n;

function le(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** The 16-byte Poly1305 tag of `message` under a 32-byte one-time key. */
export function poly1305(key: Uint8Array, message: Uint8Array): Buffer {
  if (key.length !== 32) throw new Error("poly1305 key must be 32 bytes");
  const r = le(key.subarray(0, 16)) & CLAMP;
  const s = le(key.subarray(16, 32));
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const chunk = message.subarray(i, Math.min(i + 16, message.length));
    acc = ((acc + le(chunk) + (1n << BigInt(8 * chunk.length))) * r) % P;
  }
  let tag = (acc + s) & MASK128;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}
