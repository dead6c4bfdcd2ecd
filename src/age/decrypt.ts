import { Transform } from "node:stream";
import { ArmorDecoder, looksArmored } from "./armor.ts";
import { AgeDecryptError, AgeKeyError, headerError } from "./errors.ts";
import { type Header, readHeader, verifyHeaderMac } from "./header.ts";
import { type Emit, PAYLOAD_NONCE_SIZE, PayloadOpener, payloadKey } from "./stream.ts";
import type { Identity } from "./types.ts";

const EMPTY = Buffer.alloc(0);

/** Finds the file key for a parsed header, then checks the header MAC with it (rekey.ts uses it too). */
export async function unlock(header: Header, identities: Identity[]): Promise<Uint8Array> {
  if (header.stanzas.length > 1 && header.stanzas.some((s) => s.type === "scrypt")) {
    throw headerError("an scrypt stanza must be the only one in the header");
  }
  let fileKey: Uint8Array | null = null;
  for (const identity of identities) {
    fileKey = await identity.unwrapFileKey(header.stanzas);
    if (fileKey) break;
  }
  if (!fileKey) {
    throw new AgeDecryptError(
      "no-match",
      "no identity matched any of the recipients",
      "use the identity or passphrase the file was encrypted to",
    );
  }
  if (fileKey.length !== 16) throw headerError("unwrapped file key is not 16 bytes");
  if (!verifyHeaderMac(header, fileKey)) {
    throw new AgeDecryptError("hmac", "header MAC mismatch: the file was modified");
  }
  return fileKey;
}

// Input goes through three phases: detecting armor on the first byte, collecting the header and
// payload nonce (small, bounded by MAX_HEADER_SIZE), then streaming the payload chunk by chunk.
class Decryption {
  readonly #identities: Identity[];
  #detected = false;
  #armor: ArmorDecoder | null = null;
  #headerBytes: Buffer = EMPTY;
  #opener: PayloadOpener | null = null;

  constructor(identities: Identity[]) {
    this.#identities = identities;
  }

  write(chunk: Buffer, emit: Emit): void | Promise<void> {
    if (!this.#detected) {
      if (chunk.length === 0) return;
      this.#detected = true;
      if (looksArmored(chunk[0]!)) this.#armor = new ArmorDecoder();
    }
    return this.#binary(this.#armor ? this.#armor.write(chunk) : chunk, emit);
  }

  end(emit: Emit): void | Promise<void> {
    if (!this.#detected) throw headerError("not an age file");
    const rest = this.#armor ? this.#armor.end() : EMPTY;
    const done = this.#binary(rest, emit);
    return done ? done.then(() => this.#finish(emit)) : this.#finish(emit);
  }

  #binary(data: Buffer, emit: Emit): void | Promise<void> {
    if (this.#opener) {
      this.#opener.write(data, emit);
      return;
    }
    if (data.length === 0) return;
    // Copied: callers may reuse a chunk's memory once its write has completed.
    this.#headerBytes = Buffer.concat([this.#headerBytes, data]);
    const header = readHeader(this.#headerBytes);
    if (!header || this.#headerBytes.length < header.size + PAYLOAD_NONCE_SIZE) return;
    const nonce = this.#headerBytes.subarray(header.size, header.size + PAYLOAD_NONCE_SIZE);
    const rest = this.#headerBytes.subarray(header.size + PAYLOAD_NONCE_SIZE);
    this.#headerBytes = EMPTY;
    return unlock(header, this.#identities).then((fileKey) => {
      this.#opener = new PayloadOpener(payloadKey(fileKey, nonce));
      this.#opener.write(rest, emit);
    });
  }

  #finish(emit: Emit): void {
    if (this.#opener) {
      this.#opener.end(emit);
      return;
    }
    if (this.#headerBytes.length === 0) throw headerError("not an age file");
    readHeader(this.#headerBytes); // throws if what is there is malformed
    throw headerError("file is truncated");
  }
}

/**
 * A Transform that decrypts an age v1 file, binary or ASCII-armored (detected from the first
 * byte). Memory stays at about one 64 KiB chunk. Plaintext of a chunk is pushed only after the
 * chunk's tag verified; the stream errors with an `AgeDecryptError` whose `failure` says which
 * stage rejected the file ("not an age file", "no identity matched any of the recipients",
 * "header MAC mismatch: the file was modified", "payload chunk N failed authentication: …",
 * "file is truncated"). Throws a `AgeKeyError` at once when `identities` is empty.
 * Input chunks are not retained after their write completes, so a writer may reuse its buffer.
 */
export function createDecryptStream(identities: Identity[]): Transform {
  if (identities.length === 0) throw new AgeKeyError("no identities to decrypt with");
  const decryption = new Decryption(identities);
  // Authenticated chunks of one input write go out as one buffer: pushed one by one, every 64 KiB chunk
  // became a separate write downstream (a thread-pool round trip each for zstd and the file). A failure
  // still releases the chunks that verified before it.
  const batch: Buffer[] = [];
  const emit: Emit = (b) => {
    batch.push(b);
  };
  const release = () => {
    if (batch.length === 0) return;
    stream.push(batch.length === 1 ? batch[0] : Buffer.concat(batch));
    batch.length = 0;
  };
  const run = (step: () => void | Promise<void>, callback: (err?: Error | null) => void) => {
    const finish = (err?: Error | null) => {
      release();
      callback(err);
    };
    let done: void | Promise<void>;
    try {
      done = step();
    } catch (err) {
      finish(err as Error);
      return;
    }
    if (done) done.then(() => finish(), finish);
    else finish();
  };
  const stream: Transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      run(() => decryption.write(chunk, emit), callback);
    },
    flush(callback) {
      run(() => decryption.end(emit), callback);
    },
  });
  return stream;
}
