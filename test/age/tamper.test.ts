// Every kind of damage to an age file is rejected with its own message, and decrypting through the
// stream into a file never writes plaintext of a chunk that did not authenticate.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { after, before, describe, test } from "node:test";
import {
  AgeDecryptError,
  createDecryptStream,
  encrypt,
  generateIdentity,
  type Identity,
  parseIdentities,
  parseRecipient,
} from "../../src/age/index.ts";

const CHUNK = 65536;
const SEALED = CHUNK + 16;
const PLAIN_SIZE = 3 * CHUNK + 1000; // three full chunks and a short last one
const MAC_LINE = /\n--- [A-Za-z0-9+/]{43}\n/;

let dir = "";
let plaintext: Buffer;
let file: Buffer;
let identities: Identity[];
let payloadStart = 0; // offset of the first chunk (after header and nonce)
let outputs = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "age-tamper-"));
  const gen = generateIdentity();
  identities = parseIdentities(gen.identity);
  plaintext = randomBytes(PLAIN_SIZE);
  file = Buffer.from(await encrypt(plaintext, [parseRecipient(gen.recipient)]));
  const mac = MAC_LINE.exec(file.toString("latin1"))!;
  payloadStart = mac.index + mac[0].length + 16;
  assert.equal(file.length - payloadStart, 4 * 16 + PLAIN_SIZE);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chunkStart(i: number): number {
  return payloadStart + i * SEALED;
}

async function decryptInto(input: Buffer, ids: Identity[], sink: Writable): Promise<AgeDecryptError> {
  const pieces: Buffer[] = [];
  for (let off = 0; off < input.length; off += 10_000) pieces.push(input.subarray(off, off + 10_000));
  let error: unknown;
  try {
    await pipeline(Readable.from(pieces), createDecryptStream(ids), sink);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof AgeDecryptError, `expected a decryption error, got ${String(error)}`);
  return error;
}

// Decrypts in small pieces twice: into a real file, and into memory, which sees every byte the
// stream pushed (a file stream may drop writes still queued when the pipeline fails). Both must
// agree on the error; `written` is what the stream released, `onDisk` what reached the file.
async function decryptToFile(
  input: Buffer,
  ids: Identity[] = identities,
): Promise<{ error: AgeDecryptError; written: Buffer }> {
  const path = join(dir, `out-${outputs++}`);
  const fileError = await decryptInto(input, ids, createWriteStream(path));
  const onDisk = await readFile(path);
  const parts: Buffer[] = [];
  const error = await decryptInto(
    input,
    ids,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        parts.push(chunk);
        callback();
      },
    }),
  );
  assert.equal(fileError.message, error.message);
  const written = Buffer.concat(parts);
  assert.ok(onDisk.length <= written.length && onDisk.equals(written.subarray(0, onDisk.length)));
  return { error, written };
}

// What reached the file must be whole chunks of the real plaintext, none from chunk `firstBad` on.
function assertOnlyAuthenticated(written: Buffer, firstBad: number): void {
  assert.equal(written.length % CHUNK, 0, "only whole chunks are released");
  assert.ok(written.length <= firstBad * CHUNK, `released ${written.length} bytes, bad chunk ${firstBad}`);
  assert.ok(written.equals(plaintext.subarray(0, written.length)));
}

function flip(at: number, mask = 0x01): Buffer {
  const copy = Buffer.from(file);
  copy[at]! ^= mask;
  return copy;
}

describe("tampering", () => {
  test("the untouched file decrypts", async () => {
    const path = join(dir, "good");
    await pipeline(Readable.from([file]), createDecryptStream(identities), createWriteStream(path));
    assert.ok((await readFile(path)).equals(plaintext));
  });

  test("a flipped byte anywhere in the header is rejected before any output", async () => {
    const headerEnd = payloadStart - 16;
    for (let at = 0; at < headerEnd; at++) {
      const { error, written } = await decryptToFile(flip(at));
      // Byte 0 changed means the file no longer starts like a binary age file and is read as armor.
      const allowed = at === 0 ? ["armor"] : ["header", "no-match", "hmac"];
      assert.ok(allowed.includes(error.failure), `byte ${at}: ${error.message}`);
      assert.equal(written.length, 0);
    }
  });

  test("a changed MAC says the file was modified", async () => {
    const macAt = payloadStart - 16 - 44 + 5; // a base64 character inside the MAC
    const copy = Buffer.from(file);
    copy[macAt] = copy[macAt] === 0x41 ? 0x42 : 0x41;
    const { error, written } = await decryptToFile(copy);
    assert.equal(error.message, "header MAC mismatch: the file was modified");
    assert.equal(written.length, 0);
  });

  test("a changed stanza (recipient added by hand) breaks the MAC", async () => {
    const text = file.toString("latin1");
    const other = await encrypt(Buffer.alloc(0), [parseRecipient(generateIdentity().recipient)]);
    const otherStanza = /-> X25519 .*\n.*\n/.exec(Buffer.from(other).toString("latin1"))![0];
    const at = text.indexOf("\n---");
    const forged = Buffer.concat([
      file.subarray(0, at + 1),
      Buffer.from(otherStanza, "latin1"),
      file.subarray(at + 1),
    ]);
    const { error } = await decryptToFile(forged);
    assert.equal(error.message, "header MAC mismatch: the file was modified");
  });

  test("a flipped payload nonce byte fails chunk 0", async () => {
    const { error, written } = await decryptToFile(flip(payloadStart - 3));
    assert.match(
      error.message,
      /^payload chunk 0 failed authentication: the file was modified or is corrupted$/,
    );
    assert.equal(written.length, 0);
  });

  for (let i = 0; i < 4; i++) {
    test(`a flipped byte in chunk ${i} (first, middle, tag) fails chunk ${i} only`, async () => {
      const end = i < 3 ? chunkStart(i + 1) : file.length;
      for (const at of [chunkStart(i), chunkStart(i) + 1000, end - 16, end - 1]) {
        const { error, written } = await decryptToFile(flip(at, 0x80));
        assert.equal(
          error.message,
          `payload chunk ${i} failed authentication: the file was modified or is corrupted`,
        );
        assert.equal(error.failure, "payload");
        assertOnlyAuthenticated(written, i);
        assert.equal(written.length, i * CHUNK, "every chunk before the bad one is released");
      }
    });
  }

  test("truncation at a chunk boundary is detected: the last-flag chunk is missing", async () => {
    for (const i of [1, 2, 3]) {
      const { error, written } = await decryptToFile(file.subarray(0, chunkStart(i)));
      assert.equal(error.message, "file is truncated");
      assertOnlyAuthenticated(written, i);
    }
    const none = await decryptToFile(file.subarray(0, payloadStart));
    assert.equal(none.error.message, "file is truncated");
    assert.equal(none.written.length, 0);
  });

  test("truncation inside a chunk fails that chunk, with a hint about truncation", async () => {
    for (const i of [0, 1, 2, 3]) {
      const { error, written } = await decryptToFile(file.subarray(0, chunkStart(i) + 500));
      assert.equal(
        error.message,
        `payload chunk ${i} failed authentication: the file was modified or is corrupted`,
      );
      assert.match(error.hint ?? "", /cut short/);
      assertOnlyAuthenticated(written, i);
    }
    const tiny = await decryptToFile(file.subarray(0, chunkStart(2) + 7));
    assert.equal(tiny.error.message, "file is truncated");
    assertOnlyAuthenticated(tiny.written, 2);
  });

  test("truncation inside the header or the nonce", async () => {
    for (const cut of [10, 30, payloadStart - 20, payloadStart - 5]) {
      const { error, written } = await decryptToFile(file.subarray(0, cut));
      assert.equal(error.message, "file is truncated", `cut at ${cut}`);
      assert.equal(error.failure, "header");
      assert.equal(written.length, 0);
    }
  });

  test("a dropped chunk and swapped chunks fail at the first chunk out of place", async () => {
    const dropped = Buffer.concat([file.subarray(0, chunkStart(1)), file.subarray(chunkStart(2))]);
    const d = await decryptToFile(dropped);
    assert.equal(
      d.error.message,
      "payload chunk 1 failed authentication: the file was modified or is corrupted",
    );
    assertOnlyAuthenticated(d.written, 1);

    const swapped = Buffer.concat([
      file.subarray(0, chunkStart(0)),
      file.subarray(chunkStart(1), chunkStart(2)),
      file.subarray(chunkStart(0), chunkStart(1)),
      file.subarray(chunkStart(2)),
    ]);
    const s = await decryptToFile(swapped);
    assert.equal(
      s.error.message,
      "payload chunk 0 failed authentication: the file was modified or is corrupted",
    );
    assert.equal(s.written.length, 0);

    const lastFirst = Buffer.concat([file.subarray(0, chunkStart(2)), file.subarray(chunkStart(3))]);
    const l = await decryptToFile(lastFirst);
    assert.equal(l.error.failure, "payload");
    assertOnlyAuthenticated(l.written, 2);
  });

  test("data appended after the last chunk is rejected", async () => {
    const { error } = await decryptToFile(Buffer.concat([file, Buffer.from("x")]));
    assert.equal(error.failure, "payload");
  });

  test("the wrong key matches no recipient and releases nothing", async () => {
    const { error, written } = await decryptToFile(file, parseIdentities(generateIdentity().identity));
    assert.equal(error.message, "no identity matched any of the recipients");
    assert.equal(error.failure, "no-match");
    assert.equal(written.length, 0);
  });

  test("not an age file", async () => {
    for (const junk of [Buffer.from("hello world\n"), Buffer.from("age-encryption.org/v2\n-> X\n\n")]) {
      const { error } = await decryptToFile(junk);
      assert.match(error.message, /not an age file|unsupported age format version/);
    }
    const { error } = await decryptToFile(Buffer.from("PK\x03\x04 zip"));
    assert.equal(error.message, "not an age file");
  });
});
