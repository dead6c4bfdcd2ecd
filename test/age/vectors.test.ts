// Every C2SP age test vector (npm cctv-age), decrypted through the stream API both in one piece and
// in small random pieces: the outcome class and the hash of all released plaintext must match.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { inflateSync } from "node:zlib";
import * as vectors from "cctv-age";
import {
  AgeDecryptError,
  type AgeFailure,
  createDecryptStream,
  type Identity,
  parseIdentities,
  passphraseIdentity,
} from "../../src/age/index.ts";

const EXPECT: Record<string, AgeFailure | "success"> = {
  success: "success",
  "header failure": "header",
  "HMAC failure": "hmac",
  "armor failure": "armor",
  "payload failure": "payload",
  "no match": "no-match",
};

interface Vector {
  expect: AgeFailure | "success";
  payload?: string;
  identities: string[];
  passphrases: string[];
  file: Buffer;
}

function parseVector(raw: Uint8Array): Vector {
  const buf = Buffer.from(raw);
  const split = buf.indexOf("\n\n");
  const v: Vector = { expect: "success", identities: [], passphrases: [], file: buf.subarray(split + 2) };
  let compressed = false;
  for (const line of buf.toString("utf8", 0, split).split("\n")) {
    const sep = line.indexOf(": ");
    const key = line.slice(0, sep);
    const value = line.slice(sep + 2);
    if (key === "expect") {
      const e = EXPECT[value];
      assert.ok(e, `unknown expectation ${value}`);
      v.expect = e;
    } else if (key === "payload") v.payload = value;
    else if (key === "identity") v.identities.push(value);
    else if (key === "passphrase") v.passphrases.push(value);
    else if (key === "compressed") compressed = value === "zlib";
  }
  if (compressed) v.file = inflateSync(v.file);
  return v;
}

// A small deterministic generator (mulberry32) so piece boundaries are reproducible.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pieces(file: Buffer, maxPiece: number, seed: number): Buffer[] {
  const next = rng(seed);
  const out: Buffer[] = [];
  for (let off = 0; off < file.length; ) {
    const n = 1 + Math.floor(next() * maxPiece);
    out.push(file.subarray(off, off + n));
    off += n;
  }
  return out;
}

async function run(input: Buffer[], identities: Identity[]): Promise<{ sha256: string; error: unknown }> {
  const hash = createHash("sha256");
  let error: unknown;
  try {
    await pipeline(
      Readable.from(input),
      createDecryptStream(identities),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback();
        },
      }),
    );
  } catch (err) {
    error = err;
  }
  return { sha256: hash.digest("hex"), error };
}

// Every vector runs, the post-quantum (mlkem768x25519) ones included: none is skipped.
for (const [name, raw] of Object.entries(vectors as unknown as Record<string, Uint8Array>)) {
  const v = parseVector(raw);
  test(name, async () => {
    const identities: Identity[] = [
      ...(v.identities.length ? parseIdentities(v.identities.join("\n")) : []),
      ...v.passphrases.map((p) => passphraseIdentity(p)),
    ];
    if (identities.length === 0) identities.push(passphraseIdentity("no passphrase given"));
    const small = v.file.length < 16 * 1024;
    const ways: [string, Buffer[]][] = [
      ["whole", [v.file]],
      ["pieces", pieces(v.file, small ? 7 : 5000, name.length)],
    ];
    for (const [way, input] of ways) {
      const { sha256, error } = await run(input, identities);
      if (v.expect === "success") {
        assert.equal(error, undefined, `${way}: ${String(error)}`);
      } else {
        assert.ok(error instanceof AgeDecryptError, `${way}: expected ${v.expect}, got ${String(error)}`);
        assert.equal(error.failure, v.expect, `${way}: ${error.message}`);
      }
      if (v.payload) assert.equal(sha256, v.payload, `${way}: released plaintext hash`);
    }
  });
}
