/**
 * The passphrase recipient type: `-> scrypt <salt> <log2 N>`, the file key wrapped under
 * scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt, N, r=8, p=1). An scrypt stanza must be
 * the only stanza of its header, so a passphrase can never be mixed with other recipients.
 */
import { randomBytes, scrypt } from "node:crypto";
import { decodeCanonical, encodeUnpadded } from "./base64.ts";
import { headerError } from "./errors.ts";
import { open, seal, ZERO_NONCE } from "./primitives.ts";
import type { Identity, Recipient, Stanza } from "./types.ts";

const SALT_LABEL = "age-encryption.org/v1/scrypt";
/** age's default work factor when encrypting (about a second on a laptop). */
export const DEFAULT_LOG_N = 18;
/** The highest work factor accepted when decrypting unless the caller raises it. */
export const DEFAULT_MAX_LOG_N = 22;
const DECIMAL = /^[1-9][0-9]*$/;

function deriveKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  const r = 8;
  return new Promise((resolve, reject) => {
    scrypt(
      Buffer.from(passphrase, "utf8"),
      Buffer.concat([Buffer.from(SALT_LABEL, "latin1"), salt]),
      32,
      // OpenSSL needs 128·N·r bytes; leave room for its bookkeeping.
      { N, r, p: 1, maxmem: 2 * 128 * N * r + (1 << 20) },
      (err, key) => (err ? reject(new Error("scrypt failed", { cause: err })) : resolve(key)),
    );
  });
}

/** Wraps the file key under a passphrase. */
export class ScryptRecipient implements Recipient {
  readonly kind = "scrypt" as const;
  readonly #passphrase: string;
  readonly #logN: number;

  constructor(passphrase: string, logN = DEFAULT_LOG_N) {
    if (!Number.isInteger(logN) || logN < 1 || logN > 30) throw new Error("scrypt work factor must be 1..30");
    if (passphrase.length === 0) throw new Error("empty passphrase");
    this.#passphrase = passphrase;
    this.#logN = logN;
  }

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    const salt = randomBytes(16);
    const key = await deriveKey(this.#passphrase, salt, this.#logN);
    return [
      {
        type: "scrypt",
        args: [encodeUnpadded(salt), String(this.#logN)],
        body: seal(key, ZERO_NONCE, fileKey),
      },
    ];
  }
}

/** Unwraps an scrypt stanza with a passphrase, refusing work factors above `maxLogN`. */
export class ScryptIdentity implements Identity {
  readonly #passphrase: string;
  readonly #maxLogN: number;

  constructor(passphrase: string, maxLogN = DEFAULT_MAX_LOG_N) {
    this.#passphrase = passphrase;
    this.#maxLogN = maxLogN;
  }

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    if (stanzas.some((s) => s.type === "scrypt") && stanzas.length !== 1) {
      throw headerError("an scrypt stanza must be the only one in the header");
    }
    const s = stanzas[0];
    if (!s || stanzas.length !== 1 || s.type !== "scrypt") return null;
    if (s.args.length !== 2) throw headerError("malformed scrypt stanza: wrong number of arguments");
    const salt = decodeCanonical(s.args[0]!);
    if (salt?.length !== 16) throw headerError("malformed scrypt stanza: invalid salt");
    const logNText = s.args[1]!;
    if (!DECIMAL.test(logNText)) throw headerError("malformed scrypt stanza: invalid work factor");
    const logN = Number(logNText);
    if (logN > this.#maxLogN) {
      throw headerError(`scrypt work factor 2^${logNText.slice(0, 6)} is above the limit 2^${this.#maxLogN}`);
    }
    if (s.body.length !== 32) throw headerError("malformed scrypt stanza: wrapped key is not 32 bytes");
    const key = await deriveKey(this.#passphrase, salt, logN);
    return open(key, ZERO_NONCE, s.body);
  }
}
