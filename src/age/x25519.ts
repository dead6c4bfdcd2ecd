/**
 * The native X25519 recipient type: `age1…` public keys, `AGE-SECRET-KEY-1…` secret keys, and the
 * `-> X25519 <ephemeral share>` stanza whose body is the file key wrapped under
 * HKDF(shared secret, share || recipient, "age-encryption.org/v1/X25519").
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { decodeCanonical, encodeUnpadded } from "./base64.ts";
import { bech32Decode, bech32Encode } from "./bech32.ts";
import { headerError } from "./errors.ts";
import { hkdfSha256, open, seal, ZERO_NONCE } from "./primitives.ts";
import type { Identity, Recipient, Stanza } from "./types.ts";

const LABEL = "age-encryption.org/v1/X25519";
/** Human-readable part of public keys. */
export const RECIPIENT_HRP = "age";
/** Human-readable part of secret keys (encoded uppercase). */
export const IDENTITY_HRP = "age-secret-key-";
// DER prefixes that turn 32 raw key bytes into PKCS#8 / SPKI documents for OID 1.3.101.110 (X25519).
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** An X25519 private key object from the 32 raw secret bytes. */
export function privateKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
}

function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** The 32 raw bytes of an X25519 public key (or of a private key's public half). */
export function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }).subarray(SPKI_PREFIX.length);
}

function rawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "pkcs8" }).subarray(PKCS8_PREFIX.length);
}

/** X25519(private, public); null when the result is all zeros (a low-order public point). */
export function sharedSecret(privateKey: KeyObject, publicRaw: Uint8Array): Buffer | null {
  let secret: Buffer;
  try {
    secret = diffieHellman({ privateKey, publicKey: publicKeyFromRaw(publicRaw) });
  } catch {
    // OpenSSL refuses to return the all-zero output of a low-order point.
    return null;
  }
  return secret.some((b) => b !== 0) ? secret : null;
}

/** Decodes an `age1…` string to the 32-byte public key, or null. */
export function decodeRecipientKey(s: string): Buffer | null {
  const d = bech32Decode(s);
  if (!d || d.hrp !== RECIPIENT_HRP || d.data.length !== 32 || s !== s.toLowerCase()) return null;
  return Buffer.from(d.data);
}

/** Decodes an `AGE-SECRET-KEY-1…` string to the 32-byte secret scalar, or null. */
export function decodeIdentityKey(s: string): Buffer | null {
  const d = bech32Decode(s);
  if (!d || d.hrp !== IDENTITY_HRP || d.data.length !== 32 || s !== s.toUpperCase()) return null;
  return Buffer.from(d.data);
}

/** An `age1…` public key that file keys are wrapped to. */
export class X25519Recipient implements Recipient {
  readonly kind = "X25519" as const;
  readonly publicKey: string;
  readonly #key: Buffer;

  /** `key` is the 32-byte raw public key. */
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error("x25519 public key must be 32 bytes");
    this.#key = Buffer.from(key);
    this.publicKey = bech32Encode(RECIPIENT_HRP, key);
  }

  wrapFileKey(fileKey: Uint8Array): Stanza[] {
    const { privateKey, publicKey } = generateKeyPairSync("x25519");
    const share = rawPublicKey(publicKey);
    const secret = sharedSecret(privateKey, this.#key);
    if (!secret) throw new Error("x25519 recipient is a low-order point");
    const wrapKey = hkdfSha256(secret, Buffer.concat([share, this.#key]), LABEL);
    return [{ type: "X25519", args: [encodeUnpadded(share)], body: seal(wrapKey, ZERO_NONCE, fileKey) }];
  }
}

/** An `AGE-SECRET-KEY-1…` secret key; unwraps X25519 stanzas addressed to its public key. */
export class X25519Identity implements Identity {
  readonly #privateKey: KeyObject;
  readonly #publicRaw: Buffer;

  /** `secret` is the 32-byte raw secret scalar. */
  constructor(secret: Uint8Array) {
    if (secret.length !== 32) throw new Error("x25519 secret key must be 32 bytes");
    this.#privateKey = privateKeyFromRaw(secret);
    this.#publicRaw = rawPublicKey(createPublicKey(this.#privateKey));
  }

  /** The matching `age1…` public key. */
  get recipient(): string {
    return bech32Encode(RECIPIENT_HRP, this.#publicRaw);
  }

  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null {
    for (const s of stanzas) {
      if (s.type !== "X25519") continue;
      if (s.args.length !== 1) throw headerError("malformed X25519 stanza: wrong number of arguments");
      const share = decodeCanonical(s.args[0]!);
      if (share?.length !== 32) throw headerError("malformed X25519 stanza: invalid share");
      if (s.body.length !== 32) throw headerError("malformed X25519 stanza: wrapped key is not 32 bytes");
      const secret = sharedSecret(this.#privateKey, share);
      if (!secret) throw headerError("malformed X25519 stanza: share is a low-order point");
      const wrapKey = hkdfSha256(secret, Buffer.concat([share, this.#publicRaw]), LABEL);
      const fileKey = open(wrapKey, ZERO_NONCE, s.body);
      if (fileKey) return fileKey;
    }
    return null;
  }
}

/** A fresh key pair as the two Bech32 strings. */
export function generateX25519(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return {
    identity: bech32Encode(IDENTITY_HRP, rawPrivateKey(privateKey), true),
    recipient: bech32Encode(RECIPIENT_HRP, rawPublicKey(publicKey)),
  };
}
