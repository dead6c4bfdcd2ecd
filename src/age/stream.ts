/**
 * The age payload: a 16-byte nonce, then the plaintext in 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under HKDF(file key, nonce, "payload") and the nonce
 * `11-byte big-endian chunk counter || last-chunk flag`. Every chunk but the last is full; the last
 * is flagged and may be shorter, and is empty only when the whole payload is.
 *
 * The sealer and opener are incremental and keep one chunk of state, so memory stays constant.
 * A full chunk is only known to be the last one when the input ends, so each holds back one full
 * chunk until it sees at least one more byte.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import { AgeDecryptError } from "./errors.ts";
import { hkdfSha256, open, sealParts, TAG_SIZE } from "./primitives.ts";

/** Plaintext bytes per chunk. */
export const CHUNK_SIZE = 64 * 1024;
const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** Size of the payload nonce that follows the header. */
export const PAYLOAD_NONCE_SIZE = 16;

/** The payload key for `fileKey` and the 16-byte payload nonce. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return hkdfSha256(fileKey, nonce, "payload");
}

/** Receives output buffers; each is freshly allocated and owned by the receiver. */
export type Emit = (chunk: Buffer) => void;

// The 12-byte chunk nonce. The counter lives in the low 6 bytes: 2^48 chunks of 64 KiB is far
// beyond any file, and the guard below refuses to wrap.
class ChunkNonce {
  readonly bytes = Buffer.alloc(12);
  counter = 0;

  forChunk(last: boolean): Buffer {
    this.bytes.writeUIntBE(this.counter, 5, 6);
    this.bytes[11] = last ? 1 : 0;
    return this.bytes;
  }

  advance(): void {
    if (this.counter >= 2 ** 48 - 1) throw new Error("payload is too large");
    this.counter++;
  }
}

/** Encrypts a payload fed in pieces of any size. */
export class PayloadSealer {
  readonly #key: KeyObject;
  readonly #nonce = new ChunkNonce();
  readonly #held = Buffer.allocUnsafe(CHUNK_SIZE);
  #fill = 0;

  constructor(key: Uint8Array) {
    // A KeyObject made once: passing raw bytes makes node:crypto build one per chunk (3x slower).
    this.#key = createSecretKey(key);
  }

  #seal(plaintext: Buffer, last: boolean, emit: Emit): void {
    const [ciphertext, tag] = sealParts(this.#key, this.#nonce.forChunk(last), plaintext);
    if (ciphertext.length) emit(ciphertext);
    emit(tag);
    this.#nonce.advance();
  }

  /** Encrypts what completes full chunks; keeps the rest (at most one chunk) for later. */
  write(data: Buffer, emit: Emit): void {
    let off = 0;
    while (off < data.length) {
      if (this.#fill === CHUNK_SIZE) {
        // More input exists, so the held full chunk is not the last one.
        this.#seal(this.#held, false, emit);
        this.#fill = 0;
      }
      if (this.#fill === 0 && data.length - off > CHUNK_SIZE) {
        this.#seal(data.subarray(off, off + CHUNK_SIZE), false, emit);
        off += CHUNK_SIZE;
        continue;
      }
      const n = Math.min(CHUNK_SIZE - this.#fill, data.length - off);
      data.copy(this.#held, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
    }
  }

  /** Encrypts the held bytes as the last chunk (empty only if nothing was written). */
  end(emit: Emit): void {
    this.#seal(this.#held.subarray(0, this.#fill), true, emit);
  }
}

function modified(chunk: number, hint?: string): AgeDecryptError {
  return new AgeDecryptError(
    "payload",
    `payload chunk ${chunk} failed authentication: the file was modified or is corrupted`,
    hint,
  );
}

function truncated(): AgeDecryptError {
  return new AgeDecryptError("payload", "file is truncated");
}

/**
 * Decrypts a payload fed in pieces of any size. Plaintext of a chunk is emitted only after that
 * chunk's tag has been verified; chunk numbers in errors count from 0.
 */
export class PayloadOpener {
  readonly #key: KeyObject;
  readonly #nonce = new ChunkNonce();
  readonly #held = Buffer.allocUnsafe(SEALED_CHUNK_SIZE);
  #fill = 0;
  #done = false;

  constructor(key: Uint8Array) {
    this.#key = createSecretKey(key);
  }

  #open(sealed: Buffer, last: boolean): Buffer | null {
    return open(this.#key, this.#nonce.forChunk(last), sealed);
  }

  // A full chunk followed by more bytes: it must be a non-last chunk. If it authenticates as the
  // last chunk instead, the bytes after it are trailing data.
  #openMiddle(sealed: Buffer, emit: Emit): void {
    const plaintext = this.#open(sealed, false);
    if (plaintext) {
      emit(plaintext);
      this.#nonce.advance();
      return;
    }
    const last = this.#open(sealed, true);
    if (last) {
      // Authenticated, so it may be released, as age does before reporting the trailing data.
      if (last.length) emit(last);
      this.#done = true;
      throw new AgeDecryptError("payload", "trailing data after the end of the encrypted payload");
    }
    throw modified(this.#nonce.counter);
  }

  /** Decrypts every chunk known not to be the last; holds back at most one sealed chunk. */
  write(data: Buffer, emit: Emit): void {
    if (this.#done && data.length) {
      throw new AgeDecryptError("payload", "trailing data after the end of the encrypted payload");
    }
    let off = 0;
    while (off < data.length) {
      if (this.#fill === SEALED_CHUNK_SIZE) {
        this.#openMiddle(this.#held, emit);
        this.#fill = 0;
      }
      if (this.#fill === 0 && data.length - off > SEALED_CHUNK_SIZE) {
        this.#openMiddle(data.subarray(off, off + SEALED_CHUNK_SIZE), emit);
        off += SEALED_CHUNK_SIZE;
        continue;
      }
      const n = Math.min(SEALED_CHUNK_SIZE - this.#fill, data.length - off);
      data.copy(this.#held, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
    }
  }

  /** Decrypts the held bytes as the last chunk; throws if the payload ends early or was altered. */
  end(emit: Emit): void {
    const index = this.#nonce.counter;
    if (this.#fill < TAG_SIZE) throw truncated();
    if (this.#fill === TAG_SIZE && index > 0) {
      throw new AgeDecryptError(
        "payload",
        `payload chunk ${index} is an empty last chunk: the file was modified or is corrupted`,
      );
    }
    const sealed = this.#held.subarray(0, this.#fill);
    const plaintext = this.#open(sealed, true);
    if (plaintext) {
      if (plaintext.length) emit(plaintext);
      this.#done = true;
      return;
    }
    if (this.#fill === SEALED_CHUNK_SIZE) {
      // A full chunk that authenticates as a middle chunk: the flagged last chunk is missing.
      const middle = this.#open(sealed, false);
      if (middle) {
        emit(middle);
        throw truncated();
      }
    }
    // A cut inside the last chunk looks exactly like a modification; say so.
    throw modified(index, "if the file may have been cut short, copy it again completely");
  }
}
