/**
 * HPKE (RFC 9180) in base mode, single-shot, with the one ciphersuite age uses: HKDF-SHA256 (KDF id 1)
 * and ChaCha20-Poly1305 (AEAD id 3). The KEM is the caller's: it hands over the KEM's shared secret and
 * id, and this module runs the key schedule (section 5.1) and seals or opens the first message of the
 * context (sequence number 0, so the nonce is the base nonce itself).
 */
import { createHmac } from "node:crypto";
import { open, seal } from "./primitives.ts";

const KDF_HKDF_SHA256 = 0x0001;
const AEAD_CHACHA20_POLY1305 = 0x0003;
const MODE_BASE = 0x00;
const VERSION_LABEL = Buffer.from("HPKE-v1", "latin1");
/** Nk and Nn of ChaCha20-Poly1305. */
const KEY_SIZE = 32;
const NONCE_SIZE = 12;
const HASH_SIZE = 32;

function suiteId(kemId: number): Buffer {
  const id = Buffer.alloc(10);
  id.write("HPKE", 0, "latin1");
  id.writeUInt16BE(kemId, 4);
  id.writeUInt16BE(KDF_HKDF_SHA256, 6);
  id.writeUInt16BE(AEAD_CHACHA20_POLY1305, 8);
  return id;
}

/** HKDF-Extract: HMAC-SHA256 keyed with the salt (an empty salt is HMAC's all-zero key). */
function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac("sha256", salt).update(ikm).digest();
}

/** HKDF-Expand to `length` bytes (at most 255 blocks). */
function expand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; blocks.length * HASH_SIZE < length; i++) {
    previous = createHmac("sha256", prk).update(previous).update(info).update(Uint8Array.of(i)).digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function labeledExtract(suite: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return extract(salt, Buffer.concat([VERSION_LABEL, suite, Buffer.from(label, "latin1"), ikm]));
}

function labeledExpand(
  suite: Buffer,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(length);
  return expand(
    prk,
    Buffer.concat([prefix, VERSION_LABEL, suite, Buffer.from(label, "latin1"), info]),
    length,
  );
}

/** The AEAD key and base nonce of a base-mode context (no PSK). */
export function keySchedule(
  kemId: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
): { key: Buffer; baseNonce: Buffer } {
  const suite = suiteId(kemId);
  const empty = Buffer.alloc(0);
  const pskIdHash = labeledExtract(suite, empty, "psk_id_hash", empty);
  const infoHash = labeledExtract(suite, empty, "info_hash", info);
  const context = Buffer.concat([Uint8Array.of(MODE_BASE), pskIdHash, infoHash]);
  const secret = labeledExtract(suite, sharedSecret, "secret", empty);
  return {
    key: labeledExpand(suite, secret, "key", context, KEY_SIZE),
    baseNonce: labeledExpand(suite, secret, "base_nonce", context, NONCE_SIZE),
  };
}

/** The first message of a base-mode context, sealed with an empty AAD: ciphertext followed by the tag. */
export function sealBase(
  kemId: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  plaintext: Uint8Array,
): Buffer {
  const { key, baseNonce } = keySchedule(kemId, sharedSecret, info);
  return seal(key, baseNonce, plaintext);
}

/** Opens what `sealBase` produced; null when the tag does not verify. */
export function openBase(
  kemId: number,
  sharedSecret: Uint8Array,
  info: Uint8Array,
  sealed: Uint8Array,
): Buffer | null {
  const { key, baseNonce } = keySchedule(kemId, sharedSecret, info);
  return open(key, baseNonce, sealed);
}
