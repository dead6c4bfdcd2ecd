/**
 * MLKEM768-X25519, the hybrid KEM of draft-ietf-hpke-pq (the X-Wing construction), on node:crypto:
 *
 * - private key: a 32-byte seed, expanded with SHAKE256 to 96 bytes: the first 64 are the ML-KEM-768
 *   seed (d || z of FIPS 203), the last 32 the X25519 secret scalar;
 * - public key (1216 bytes): ML-KEM-768 encapsulation key (1184) || X25519 public key (32);
 * - enc (1120 bytes): ML-KEM-768 ciphertext (1088) || ephemeral X25519 public key (32);
 * - shared secret: SHA3-256(ss_mlkem || ss_x25519 || ephemeral X25519 key || recipient X25519 key || label)
 *   with the 6-byte label `\./` `/^\`.
 *
 * ML-KEM needs Node 24.7+ built with OpenSSL 3.5+ (`crypto.encapsulate`, the `ml-kem-768` key type);
 * `requireMlKem` says so in one line where it is missing.
 */
import * as nodeCrypto from "node:crypto";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { AgeKeyError } from "./errors.ts";
import { privateKeyFromRaw, rawPublicKey, sharedSecret } from "./x25519.ts";

/** The HPKE KEM identifier of MLKEM768-X25519. */
export const KEM_ID = 0x647a;
/** Size of the private key (the seed). */
export const SEED_SIZE = 32;
const MLKEM_PUBLIC_KEY_SIZE = 1184;
const MLKEM_CIPHERTEXT_SIZE = 1088;
const MLKEM_SEED_SIZE = 64;
const X25519_SIZE = 32;
/** Size of the public key. */
export const PUBLIC_KEY_SIZE = MLKEM_PUBLIC_KEY_SIZE + X25519_SIZE;
/** Size of the encapsulated key. */
export const ENC_SIZE = MLKEM_CIPHERTEXT_SIZE + X25519_SIZE;
const LABEL = Buffer.from([0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c]);
// DER prefixes for OID 2.16.840.1.101.3.4.4.2 (ML-KEM-768): a PKCS#8 document holding the private key
// in its 64-byte seed form ([0] IMPLICIT OCTET STRING), and an SPKI document for the encapsulation key.
const MLKEM_PKCS8_SEED_PREFIX = Buffer.from("3054020100300b060960864801650304040204428040", "hex");
const MLKEM_SPKI_PREFIX = Buffer.from("308204b2300b0609608648016503040402038204a100", "hex");

interface KemFunctions {
  encapsulate(key: KeyObject): { sharedKey: Buffer; ciphertext: Buffer };
  decapsulate(key: KeyObject, ciphertext: Uint8Array): Buffer;
}

let available: boolean | undefined;

/** Throws a `AgeKeyError` when this Node has no ML-KEM-768 (before Node 24.7, or OpenSSL before 3.5). */
export function requireMlKem(): KemFunctions {
  const kem = nodeCrypto as unknown as Partial<KemFunctions>;
  if (available === undefined) {
    try {
      available = typeof kem.encapsulate === "function" && typeof kem.decapsulate === "function";
      if (available) generateKeyPairSync("ml-kem-768");
    } catch {
      available = false;
    }
  }
  if (!available) {
    throw new AgeKeyError(
      `post-quantum (ML-KEM-768) keys are not available in Node ${process.versions.node} with OpenSSL ${process.versions.openssl}`,
      "run etcd-backup on Node 24.7 or later built with OpenSSL 3.5 or later",
    );
  }
  return kem as KemFunctions;
}

function rawMlKemPublicKey(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" }).subarray(MLKEM_SPKI_PREFIX.length);
}

function x25519Part(share: Uint8Array): Buffer {
  return Buffer.from(share.buffer, share.byteOffset + share.length - X25519_SIZE, X25519_SIZE);
}

function combine(
  ssMlKem: Uint8Array,
  ssX25519: Uint8Array,
  ctX25519: Uint8Array,
  pkX25519: Uint8Array,
): Buffer {
  return createHash("sha3-256")
    .update(ssMlKem)
    .update(ssX25519)
    .update(ctX25519)
    .update(pkX25519)
    .update(LABEL)
    .digest();
}

/** A recipient's public key, checked: ML-KEM's encapsulation key must pass FIPS 203's modulus check. */
export class HybridPublicKey {
  readonly bytes: Buffer;
  readonly #mlkem: KeyObject;
  readonly #x25519: Buffer;

  /** Throws an `Error` when `bytes` is not a valid 1216-byte MLKEM768-X25519 public key. */
  constructor(bytes: Uint8Array) {
    if (bytes.length !== PUBLIC_KEY_SIZE) throw new Error("MLKEM768-X25519 public key must be 1216 bytes");
    requireMlKem();
    this.bytes = Buffer.from(bytes);
    try {
      this.#mlkem = createPublicKey({
        key: Buffer.concat([MLKEM_SPKI_PREFIX, this.bytes.subarray(0, MLKEM_PUBLIC_KEY_SIZE)]),
        format: "der",
        type: "spki",
      });
    } catch {
      throw new Error("invalid ML-KEM-768 encapsulation key");
    }
    this.#x25519 = this.bytes.subarray(MLKEM_PUBLIC_KEY_SIZE);
  }

  /** A fresh shared secret and the `enc` that carries it to the private key's holder. */
  encapsulate(): { sharedSecret: Buffer; enc: Buffer } {
    const { encapsulate } = requireMlKem();
    const ephemeral = generateKeyPairSync("x25519").privateKey;
    const ctX25519 = rawPublicKey(createPublicKey(ephemeral));
    const ssX25519 = sharedSecret(ephemeral, this.#x25519);
    if (!ssX25519) throw new Error("X25519 part of the recipient is a low-order point");
    const { sharedKey, ciphertext } = encapsulate(this.#mlkem);
    return {
      sharedSecret: combine(sharedKey, ssX25519, ctX25519, this.#x25519),
      enc: Buffer.concat([ciphertext, ctX25519]),
    };
  }
}

/** A private key, derived from its 32-byte seed. */
export class HybridPrivateKey {
  /** The matching 1216-byte public key. */
  readonly publicKey: Buffer;
  readonly #mlkem: KeyObject;
  readonly #x25519: KeyObject;
  readonly #x25519Public: Buffer;

  constructor(seed: Uint8Array) {
    if (seed.length !== SEED_SIZE) throw new Error("MLKEM768-X25519 seed must be 32 bytes");
    requireMlKem();
    const expanded = createHash("shake256", { outputLength: MLKEM_SEED_SIZE + X25519_SIZE })
      .update(seed)
      .digest();
    this.#mlkem = createPrivateKey({
      key: Buffer.concat([MLKEM_PKCS8_SEED_PREFIX, expanded.subarray(0, MLKEM_SEED_SIZE)]),
      format: "der",
      type: "pkcs8",
    });
    this.#x25519 = privateKeyFromRaw(expanded.subarray(MLKEM_SEED_SIZE));
    expanded.fill(0);
    this.#x25519Public = rawPublicKey(createPublicKey(this.#x25519));
    this.publicKey = Buffer.concat([rawMlKemPublicKey(createPublicKey(this.#mlkem)), this.#x25519Public]);
  }

  /**
   * The shared secret `enc` carries, or null when its X25519 part is a low-order point (the X25519
   * output would be all zeros). `enc` must be ENC_SIZE bytes. ML-KEM rejects implicitly: an `enc`
   * made for another key gives a wrong secret, found out when the AEAD tag does not verify.
   */
  decapsulate(enc: Uint8Array): Buffer | null {
    if (enc.length !== ENC_SIZE) throw new Error("MLKEM768-X25519 enc must be 1120 bytes");
    const { decapsulate } = requireMlKem();
    const ctX25519 = x25519Part(enc);
    const ssX25519 = sharedSecret(this.#x25519, ctX25519);
    if (!ssX25519) return null;
    const ssMlKem = decapsulate(this.#mlkem, enc.subarray(0, MLKEM_CIPHERTEXT_SIZE));
    return combine(ssMlKem, ssX25519, ctX25519, this.#x25519Public);
  }
}
