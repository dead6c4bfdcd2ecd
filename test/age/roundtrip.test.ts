// Property: for random sizes, recipient sets, armor on or off, and random input piece sizes on both
// sides, decrypt(encrypt(x)) === x with any identity that was a recipient, and no other identity.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable, type Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import {
  AgeDecryptError,
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  type Identity,
  parseIdentities,
  parseRecipient,
  passphraseIdentity,
  passphraseRecipient,
  type Recipient,
} from "../../src/age/index.ts";

// mulberry32: small, seeded, reproducible.
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

function randomBuffer(next: () => number, size: number): Buffer {
  // Hash-expanded so the plaintext depends on the seed only.
  const out = Buffer.allocUnsafe(size);
  const seed = Buffer.from(String(next()));
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    createHash("sha256").update(seed).update(String(i)).digest().copy(out, off);
  }
  return out;
}

function pieces(next: () => number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const max = [1, 17, 4096, 70_000, 300_000][Math.floor(next() * 5)]!;
  for (let off = 0; off < data.length; ) {
    const n = 1 + Math.floor(next() * max);
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

async function through(input: Buffer[], transform: Transform): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(input),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        parts.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(parts);
}

const CHUNK = 65536;

function pickSize(next: () => number): number {
  const r = next();
  if (r < 0.1) return 0;
  if (r < 0.5) {
    // near a chunk boundary
    const k = Math.floor(next() * 4);
    return Math.max(0, k * CHUNK + Math.floor(next() * 5) - 2);
  }
  return Math.floor(next() * 5 * CHUNK);
}

const CASES = 60;

test(`${CASES} seeded random round trips through the streams`, async () => {
  const keys = Array.from({ length: 5 }, () => generateIdentity());
  const next = rng(20240601);
  for (let c = 0; c < CASES; c++) {
    const size = pickSize(next);
    const data = randomBuffer(next, size);
    const armor = next() < 0.3;
    let recipients: Recipient[];
    let good: Identity[];
    let bad: Identity[];
    if (next() < 0.15) {
      const pass = `pass-${c}`;
      recipients = [passphraseRecipient(pass, 4)];
      good = [passphraseIdentity(pass)];
      bad = [passphraseIdentity(`${pass}!`)];
    } else {
      const count = 1 + Math.floor(next() * keys.length - 1e-9);
      const chosen = keys.slice(0, count);
      recipients = chosen.map((k) => parseRecipient(k.recipient));
      const pick = chosen[Math.floor(next() * count)]!;
      // The matching identity may come after non-matching ones.
      good = [
        ...keys.slice(count).map((k) => parseIdentities(k.identity)[0]!),
        ...parseIdentities(pick.identity),
      ];
      bad = keys.slice(count).map((k) => parseIdentities(k.identity)[0]!);
    }
    const label = `case ${c}: ${size} bytes, ${recipients.length} recipient(s), armor ${armor}`;
    const encrypted = await through(pieces(next, data), createEncryptStream(recipients, { armor }));
    const expectedBinary = armor ? undefined : size + 16 * Math.max(1, Math.ceil(size / CHUNK));
    if (expectedBinary !== undefined) {
      const headerAndNonce = encrypted.length - expectedBinary;
      assert.ok(headerAndNonce > 16 && headerAndNonce < 1000, label);
    }
    const decrypted = await through(pieces(next, encrypted), createDecryptStream(good));
    assert.ok(decrypted.equals(data), label);
    if (bad.length) {
      await assert.rejects(
        through([encrypted], createDecryptStream(bad)),
        (err) => err instanceof AgeDecryptError && err.failure === "no-match",
        label,
      );
    }
  }
});

test("a passphrase cannot be mixed with other recipients; empty lists are usage errors", () => {
  const key = generateIdentity();
  assert.throws(
    () => createEncryptStream([passphraseRecipient("x", 4), parseRecipient(key.recipient)]),
    /a passphrase cannot be combined with other recipients/,
  );
  assert.throws(() => createEncryptStream([]), /no recipients/);
  assert.throws(() => createDecryptStream([]), /no identities/);
});

const PQ_CASES = 30;

test(`${PQ_CASES} seeded random round trips with post-quantum (mlkem768x25519) recipients`, async () => {
  const keys = Array.from({ length: 4 }, () => generateIdentity({ pq: true }));
  const next = rng(20261130);
  for (let c = 0; c < PQ_CASES; c++) {
    const size = pickSize(next);
    const data = randomBuffer(next, size);
    const armor = next() < 0.3;
    const count = 1 + Math.floor(next() * (keys.length - 1));
    const chosen = keys.slice(0, count);
    const recipients = chosen.map((k) => parseRecipient(k.recipient));
    const pick = chosen[Math.floor(next() * count)]!;
    const others = keys.slice(count).map((k) => parseIdentities(k.identity)[0]!);
    const label = `pq case ${c}: ${size} bytes, ${count} recipient(s), armor ${armor}`;
    const encrypted = await through(pieces(next, data), createEncryptStream(recipients, { armor }));
    if (!armor) {
      // Each stanza: "-> mlkem768x25519 " + 1494 base64 characters of enc, then the 43-character body.
      const header = encrypted.subarray(0, encrypted.indexOf("\n---") + 48).toString("latin1");
      assert.equal(
        header.match(/^-> mlkem768x25519 [A-Za-z0-9+/]{1494}\n[A-Za-z0-9+/]{43}\n/gm)?.length,
        count,
      );
      assert.equal(
        encrypted.length - (size + 16 * Math.max(1, Math.ceil(size / CHUNK))) - 16,
        header.length + 1,
      );
    }
    const good = [...others, ...parseIdentities(pick.identity)];
    const decrypted = await through(pieces(next, encrypted), createDecryptStream(good));
    assert.ok(decrypted.equals(data), label);
    if (others.length) {
      await assert.rejects(
        through([encrypted], createDecryptStream(others)),
        (err) => err instanceof AgeDecryptError && err.failure === "no-match",
        label,
      );
    }
  }
});

test("post-quantum recipients cannot be mixed with classic ones, nor with a passphrase", () => {
  const pq = parseRecipient(generateIdentity({ pq: true }).recipient);
  const classic = parseRecipient(generateIdentity().recipient);
  for (const list of [
    [pq, classic],
    [classic, pq, pq],
  ]) {
    assert.throws(
      () => createEncryptStream(list),
      /post-quantum \(age1pq1…\) and classic \(age1…\) recipients cannot be mixed/,
    );
  }
  assert.throws(
    () => createEncryptStream([pq, passphraseRecipient("x", 4)]),
    /a passphrase cannot be combined with other recipients/,
  );
  assert.doesNotThrow(() => createEncryptStream([pq, pq]).destroy());
});
