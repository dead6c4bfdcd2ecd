/**
 * The post-quantum hybrid recipient type of age: `age1pq1…` public keys, `AGE-SECRET-KEY-PQ-1…`
 * secret keys, and the `-> mlkem768x25519 <enc>` stanza whose body is the file key sealed with HPKE
 * (base mode; KEM MLKEM768-X25519, KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, info
 * "age-encryption.org/mlkem768x25519", empty AAD).
 *
 * A file encrypted to a hybrid recipient and to a classic one is only as strong as the classic one,
 * so age (and `createEncryptStream`) refuse to mix them.
 */
import { randomBytes } from "node:crypto";
import { decodeCanonical, encodeUnpadded } from "./base64.ts";
import { bech32Decode, bech32Encode } from "./bech32.ts";
import { headerError } from "./errors.ts";
import { openBase, sealBase } from "./hpke.ts";
import {
  ENC_SIZE,
  HybridPrivateKey,
  HybridPublicKey,
  KEM_ID,
  PUBLIC_KEY_SIZE,
  SEED_SIZE,
} from "./mlkem768x25519.ts";
import type { Identity, Recipient, Stanza } from "./types.ts";

/** The stanza type, also the recipient kind manifests record. */
export const HYBRID_STANZA = "mlkem768x25519";
const INFO = Buffer.from("age-encryption.org/mlkem768x25519", "latin1");
/** Human-readable part of hybrid public keys. */
export const HYBRID_RECIPIENT_HRP = "age1pq";
/** Human-readable part of hybrid secret keys (encoded uppercase). */
export const HYBRID_IDENTITY_HRP = "age-secret-key-pq-";
/** A wrapped file key: 16 bytes and the 16-byte tag. */
const BODY_SIZE = 32;

/** Decodes an `age1pq1…` string to the 1216-byte public key, or null. */
export function decodeHybridRecipientKey(s: string): Buffer | null {
  const d = bech32Decode(s);
  if (!d || d.hrp !== HYBRID_RECIPIENT_HRP || d.data.length !== PUBLIC_KEY_SIZE || s !== s.toLowerCase())
    return null;
  return Buffer.from(d.data);
}

/** Decodes an `AGE-SECRET-KEY-PQ-1…` string to the 32-byte seed, or null. */
export function decodeHybridIdentityKey(s: string): Buffer | null {
  const d = bech32Decode(s);
  if (!d || d.hrp !== HYBRID_IDENTITY_HRP || d.data.length !== SEED_SIZE || s !== s.toUpperCase())
    return null;
  return Buffer.from(d.data);
}

/** An `age1pq1…` public key that file keys are wrapped to. */
export class HybridRecipient implements Recipient {
  readonly kind = HYBRID_STANZA;
  readonly publicKey: string;
  readonly #key: HybridPublicKey;

  /** `key` is the 1216-byte public key; throws an `Error` when it is not a valid one. */
  constructor(key: Uint8Array) {
    this.#key = new HybridPublicKey(key);
    this.publicKey = bech32Encode(HYBRID_RECIPIENT_HRP, key);
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const { sharedSecret, enc } = this.#key.encapsulate();
    const body = sealBase(KEM_ID, sharedSecret, INFO, fileKey);
    return [{ type: HYBRID_STANZA, args: [encodeUnpadded(enc)], body }];
  }
}

/** An `AGE-SECRET-KEY-PQ-1…` secret key; unwraps mlkem768x25519 stanzas addressed to its public key. */
export class HybridIdentity implements Identity {
  readonly #key: HybridPrivateKey;

  /** `seed` is the 32-byte secret key. */
  constructor(seed: Uint8Array) {
    this.#key = new HybridPrivateKey(seed);
  }

  /** The matching `age1pq1…` public key. */
  get recipient(): string {
    return bech32Encode(HYBRID_RECIPIENT_HRP, this.#key.publicKey);
  }

  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const s of stanzas) {
      if (s.type !== HYBRID_STANZA) continue;
      if (s.args.length !== 1)
        throw headerError("malformed mlkem768x25519 stanza: wrong number of arguments");
      const enc = decodeCanonical(s.args[0]!);
      if (enc?.length !== ENC_SIZE) throw headerError("malformed mlkem768x25519 stanza: invalid enc");
      // Checked before decrypting: a longer body would let a crafted file probe many keys at once.
      if (s.body.length !== BODY_SIZE) {
        throw headerError("malformed mlkem768x25519 stanza: wrapped key is not 32 bytes");
      }
      const secret = this.#key.decapsulate(enc);
      if (!secret) throw headerError("malformed mlkem768x25519 stanza: X25519 share is a low-order point");
      const fileKey = openBase(KEM_ID, secret, INFO, s.body);
      if (fileKey) return fileKey;
    }
    return null;
  }
}

/** A fresh hybrid key pair as the two Bech32 strings. */
export function generateHybrid(): { identity: string; recipient: string } {
  const seed = randomBytes(SEED_SIZE);
  const recipient = new HybridIdentity(seed).recipient;
  const identity = bech32Encode(HYBRID_IDENTITY_HRP, seed, true);
  seed.fill(0);
  return { identity, recipient };
}
