import { randomBytes } from "node:crypto";
import { Transform } from "node:stream";
import { handOver } from "../stages/buffer-handover.ts";
import { ArmorEncoder } from "./armor.ts";
import { AgeKeyError } from "./errors.ts";
import { encodeHeader } from "./header.ts";
import { type Emit, PAYLOAD_NONCE_SIZE, PayloadSealer, payloadKey } from "./stream.ts";
import type { Recipient, Stanza } from "./types.ts";

/** Options of `createEncryptStream`. */
export interface EncryptOptions {
  /** Wrap the output in the ASCII armor (`-----BEGIN AGE ENCRYPTED FILE-----`). */
  armor?: boolean;
}

/**
 * Checks a recipient list before any work: at least one, a passphrase only alone, and post-quantum
 * recipients only with other post-quantum ones (as age does: a classic recipient beside them would
 * leave the file open to a quantum computer). Throws a `AgeKeyError`.
 */
export function checkRecipients(recipients: Recipient[]): void {
  if (recipients.length === 0) throw new AgeKeyError("no recipients to encrypt to");
  if (recipients.length > 1 && recipients.some((r) => r.kind === "scrypt")) {
    throw new AgeKeyError("a passphrase cannot be combined with other recipients");
  }
  const pq = recipients.filter((r) => r.kind === "mlkem768x25519").length;
  if (pq > 0 && pq < recipients.length) {
    throw new AgeKeyError(
      "post-quantum (age1pq1…) and classic (age1…) recipients cannot be mixed",
      "the classic ones would leave the backup open to a quantum computer: use only age1pq1… keys, or only age1… keys",
    );
  }
}

/**
 * A Transform that encrypts its input to `recipients` as an age v1 file (armored if asked).
 * Memory stays at about one 64 KiB chunk whatever the input size; backpressure is the stream's.
 * Throws a `AgeKeyError` at once for an empty recipient list, a passphrase mixed with others, or
 * post-quantum recipients mixed with classic ones;
 * errors while wrapping the file key (scrypt) are emitted as stream errors.
 * Input chunks are not retained after their write completes, so a writer may reuse its buffer.
 */
export function createEncryptStream(recipients: Recipient[], options: EncryptOptions = {}): Transform {
  checkRecipients(recipients);
  const armor = options.armor ? new ArmorEncoder() : null;
  let sealer: PayloadSealer | null = null;
  let pending: Buffer | null = null;

  const stream: Transform = new Transform({
    construct(callback) {
      const fileKey = randomBytes(16);
      Promise.all(recipients.map((r) => r.wrapFileKey(fileKey)))
        .then((wrapped: Stanza[][]) => {
          const nonce = randomBytes(PAYLOAD_NONCE_SIZE);
          pending = Buffer.concat([encodeHeader(wrapped.flat(), fileKey), nonce]);
          sealer = new PayloadSealer(payloadKey(fileKey, nonce));
          callback();
        })
        .catch((err: unknown) => callback(new Error("wrap file key", { cause: err })));
    },
    transform(chunk: Buffer, _encoding, callback) {
      try {
        start();
        sealer!.write(chunk, emit);
        flushBatch();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        start();
        sealer!.end(emit);
        flushBatch();
        if (armor) stream.push(armor.end());
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });

  const emit: Emit = armor
    ? (b) => {
        const text = armor.write(b);
        if (text.length) stream.push(text);
      }
    : (b) => {
        batch.push(b);
      };
  // Sealed chunks come out as ciphertext and tag; pushed one by one, each became a write(2) of its
  // own downstream (13k syscalls for 200 MB). One buffer per input chunk instead.
  const batch: Buffer[] = [];
  const flushBatch = () => {
    if (batch.length === 0) return;
    // Nothing here keeps the output: the stage that consumes it may free it (stages/buffer-handover.ts).
    stream.push(handOver(batch.length === 1 ? batch[0]! : Buffer.concat(batch)));
    batch.length = 0;
  };
  // The header goes out with the first output, once construct() has built it.
  const start = () => {
    if (pending) {
      emit(pending);
      pending = null;
    }
  };
  return stream;
}
