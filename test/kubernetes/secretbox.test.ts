import assert from "node:assert/strict";
import { createCipheriv, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { poly1305 } from "../../src/kubernetes/at-rest/poly1305.ts";
import { secretboxOpen, secretboxSeal } from "../../src/kubernetes/at-rest/secretbox.ts";
import { hsalsa20, xsalsa20Xor } from "../../src/kubernetes/at-rest/xsalsa20.ts";

describe("xsalsa20", () => {
  test("Go x/crypto salsa20 vector: 'Hello world!'", () => {
    const out = xsalsa20Xor(
      Buffer.from("this is 32-byte key for xsalsa20"),
      Buffer.from("24-byte nonce for xsalsa"),
      Buffer.from("Hello world!"),
    );
    assert.equal(out.toString("hex"), "002d4513843fc240c401e541");
  });

  test("libsodium crypto_stream_xsalsa20 vector: key 'k'*32, nonce 'n'*24, 64 bytes", () => {
    const out = xsalsa20Xor(Buffer.alloc(32, "k"), Buffer.alloc(24, "n"), Buffer.alloc(64));
    assert.equal(
      out.toString("hex"),
      "91172bd584998fa76d97a543eccf9eafdde4107708b45dda53ad660ebfc44656c8c850d59229d2a15e54fb6a1119be624e1880c0916eb6e08b2557e1d03db9da",
    );
  });

  test("skipping into the stream equals slicing the stream, across block boundaries", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const stream = xsalsa20Xor(key, nonce, Buffer.alloc(300));
    for (const skip of [0, 1, 32, 63, 64, 65, 130]) {
      assert.deepEqual(xsalsa20Xor(key, nonce, Buffer.alloc(100), skip), stream.subarray(skip, skip + 100));
    }
  });

  test("hsalsa20 depends on every input byte", () => {
    const key = Buffer.alloc(32, 1);
    const a = hsalsa20(key, Buffer.alloc(16));
    const input = Buffer.alloc(16);
    input[15] = 1;
    assert.notDeepEqual(hsalsa20(key, input), a);
  });
});

describe("poly1305", () => {
  test("RFC 8439 section 2.5.2 vector", () => {
    const key = Buffer.from("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b", "hex");
    assert.equal(
      poly1305(key, Buffer.from("Cryptographic Forum Research Group")).toString("hex"),
      "a8061dc1305136c6c22b8baf0c0127a9",
    );
  });

  test("equals the tag node's chacha20-poly1305 computes (RFC 8439 AEAD construction)", () => {
    for (const len of [0, 1, 15, 16, 17, 100, 1000]) {
      const key = randomBytes(32);
      const iv = randomBytes(12);
      const plaintext = randomBytes(len);
      const aead = createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 });
      const ciphertext = Buffer.concat([aead.update(plaintext), aead.final()]);
      const tag = aead.getAuthTag();
      // The one-time key is the first 32 bytes of the ChaCha20 block with counter 0.
      const counter0 = Buffer.concat([Buffer.alloc(4), iv]);
      const polyKey = createCipheriv("chacha20", key, counter0).update(Buffer.alloc(32));
      const pad = Buffer.alloc((16 - (ciphertext.length % 16)) % 16);
      const lengths = Buffer.alloc(16);
      lengths.writeBigUInt64LE(BigInt(ciphertext.length), 8);
      assert.deepEqual(poly1305(polyKey, Buffer.concat([ciphertext, pad, lengths])), tag, `length ${len}`);
    }
  });
});

describe("secretbox", () => {
  test("round trip and tamper detection", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    for (const len of [0, 1, 31, 32, 33, 64, 1000]) {
      const msg = randomBytes(len);
      const box = secretboxSeal(msg, nonce, key);
      assert.equal(box.length, len + 16);
      assert.deepEqual(secretboxOpen(box, nonce, key), msg);
      const bad = Buffer.from(box);
      bad[bad.length - 1]! ^= 1;
      if (len > 0) assert.throws(() => secretboxOpen(bad, nonce, key), /authentication failed/);
      assert.throws(() => secretboxOpen(box, nonce, randomBytes(32)), /authentication failed/);
    }
  });

  test("the ciphertext is the xsalsa20 stream from byte 32 and the tag is poly1305 under its first 32 bytes", () => {
    const key = Buffer.from("this is 32-byte key for xsalsa20");
    const nonce = Buffer.from("24-byte nonce for xsalsa");
    const msg = Buffer.from("Hello world!");
    const box = secretboxSeal(msg, nonce, key);
    const stream = xsalsa20Xor(key, nonce, Buffer.alloc(32 + msg.length));
    const ct = Buffer.from(msg.map((b, i) => b ^ stream[32 + i]!));
    assert.deepEqual(box.subarray(16), ct);
    assert.deepEqual(box.subarray(0, 16), poly1305(stream.subarray(0, 32), ct));
  });
});
