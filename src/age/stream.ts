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
import { createCipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { AgeDecryptError } from "./errors.ts";
import { hkdfSha256, open, TAG_SIZE } from "./primitives.ts";

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

/**
 * Encrypts a payload fed in pieces of any size. Each `write` emits at most one buffer holding every
 * chunk it sealed (ciphertext and tag back to back), so a 1 MiB input piece gives one 1 MiB output
 * write instead of two writes (ciphertext, tag) per 64 KiB chunk.
 */
export class PayloadSealer {
  readonly #key: KeyObject;
  readonly #nonce = new ChunkNonce();
  readonly #held = Buffer.allocUnsafe(CHUNK_SIZE);
  #fill = 0;

  constructor(key: Uint8Array) {
    // A KeyObject made once: passing raw bytes makes node:crypto build one per chunk (3x slower).
    this.#key = createSecretKey(key);
  }

  // Seals `plaintext` into `out` at `at`; returns the offset after its tag.
  #sealInto(plaintext: Buffer, last: boolean, out: Buffer, at: number): number {
    const cipher = createCipheriv("chacha20-poly1305", this.#key, this.#nonce.forChunk(last), {
      authTagLength: TAG_SIZE,
    });
    let off = at + cipher.update(plaintext).copy(out, at);
    off += cipher.final().copy(out, off);
    off += cipher.getAuthTag().copy(out, off);
    this.#nonce.advance();
    return off;
  }

  /** Encrypts what completes full chunks; keeps the rest (at most one chunk) for later. */
  write(data: Buffer, emit: Emit): void {
    const total = this.#fill + data.length;
    // Every full chunk followed by at least one more byte is known not to be the last one.
    const count = total === 0 ? 0 : Math.floor((total - 1) / CHUNK_SIZE);
    let off = 0;
    if (count > 0) {
      const out = Buffer.allocUnsafe(count * SEALED_CHUNK_SIZE);
      let at = 0;
      let sealed = 0;
      if (this.#fill > 0) {
        // Complete the held chunk from the input's head, then seal it from the held buffer.
        off = CHUNK_SIZE - this.#fill;
        data.copy(this.#held, this.#fill, 0, off);
        at = this.#sealInto(this.#held, false, out, at);
        this.#fill = 0;
        sealed++;
      }
      // The rest are sealed straight from views of the input, without copying it first.
      for (; sealed < count; sealed++, off += CHUNK_SIZE) {
        at = this.#sealInto(data.subarray(off, off + CHUNK_SIZE), false, out, at);
      }
      emit(out);
    }
    // Keep the remainder (1 to CHUNK_SIZE bytes, or none): the input may be reused after this call.
    this.#fill += data.copy(this.#held, this.#fill, off);
  }

  /** Encrypts the held bytes as the last chunk (empty only if nothing was written). */
  end(emit: Emit): void {
    const out = Buffer.allocUnsafe(this.#fill + TAG_SIZE);
    this.#sealInto(this.#held.subarray(0, this.#fill), true, out, 0);
    emit(out);
  }
}

function modified(chunk: number, hint?: string): AgeDecryptError {
  return new AgeDecryptError(
    "payload",
    `payload chunk ${chunk} failed authentication: the file was modified or is corrupted`,
    hint,
  );
}

// Thrown inside PayloadOpener.write when a middle chunk authenticated as the last one: carries how
// many plaintext bytes (including that chunk's) are authenticated and may be released.
class TrailingData {
  readonly released: number;
  constructor(released: number) {
    this.released = released;
  }
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

  // A full chunk followed by more bytes: it must be a non-last chunk. Its plaintext goes into
  // `out` at `at` once authenticated; returns the offset after it. If it authenticates as the last
  // chunk instead, the bytes after it are trailing data.
  #openMiddle(sealed: Buffer, out: Buffer, at: number): number {
    const plaintext = this.#open(sealed, false);
    if (plaintext) {
      this.#nonce.advance();
      return at + plaintext.copy(out, at);
    }
    const last = this.#open(sealed, true);
    this.#done = true;
    if (last) {
      // Authenticated, so it may be released, as age does before reporting the trailing data.
      throw new TrailingData(at + last.copy(out, at));
    }
    throw modified(this.#nonce.counter);
  }

  /**
   * Decrypts every chunk known not to be the last; holds back at most one sealed chunk. The
   * plaintext of all chunks opened by one call is emitted as one buffer, after each of them has
   * been authenticated; if a chunk fails, the authenticated ones before it are emitted first.
   */
  write(data: Buffer, emit: Emit): void {
    if (this.#done && data.length) {
      throw new AgeDecryptError("payload", "trailing data after the end of the encrypted payload");
    }
    const total = this.#fill + data.length;
    const count = total === 0 ? 0 : Math.floor((total - 1) / SEALED_CHUNK_SIZE);
    let off = 0;
    if (count > 0) {
      const out = Buffer.allocUnsafe(count * CHUNK_SIZE);
      let at = 0;
      let opened = 0;
      try {
        if (this.#fill > 0) {
          off = SEALED_CHUNK_SIZE - this.#fill;
          data.copy(this.#held, this.#fill, 0, off);
          this.#fill = 0;
          at = this.#openMiddle(this.#held, out, at);
          opened++;
        }
        for (; opened < count; opened++, off += SEALED_CHUNK_SIZE) {
          at = this.#openMiddle(data.subarray(off, off + SEALED_CHUNK_SIZE), out, at);
        }
      } catch (err) {
        const released = err instanceof TrailingData ? err.released : at;
        if (released > 0) emit(out.subarray(0, released));
        if (err instanceof TrailingData) {
          throw new AgeDecryptError("payload", "trailing data after the end of the encrypted payload");
        }
        throw err;
      }
      emit(out);
    }
    this.#fill += data.copy(this.#held, this.#fill, off);
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
