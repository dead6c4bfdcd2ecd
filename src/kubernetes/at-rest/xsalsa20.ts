/**
 * XSalsa20 (Bernstein, "Extending the Salsa20 nonce"): HSalsa20 derives a subkey from the key and the first
 * 16 nonce bytes, then Salsa20/20 runs with that subkey and the last 8 nonce bytes. node:crypto has no
 * Salsa20, and the apiserver's `secretbox` provider needs it.
 */

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function rotl(v: number, n: number): number {
  return (v << n) | (v >>> (32 - n));
}

/** 20 rounds over `x` in place (10 column rounds alternating with 10 row rounds). */
function rounds(x: Uint32Array): void {
  for (let i = 0; i < 10; i++) {
    x[4]! ^= rotl((x[0]! + x[12]!) | 0, 7);
    x[8]! ^= rotl((x[4]! + x[0]!) | 0, 9);
    x[12]! ^= rotl((x[8]! + x[4]!) | 0, 13);
    x[0]! ^= rotl((x[12]! + x[8]!) | 0, 18);
    x[9]! ^= rotl((x[5]! + x[1]!) | 0, 7);
    x[13]! ^= rotl((x[9]! + x[5]!) | 0, 9);
    x[1]! ^= rotl((x[13]! + x[9]!) | 0, 13);
    x[5]! ^= rotl((x[1]! + x[13]!) | 0, 18);
    x[14]! ^= rotl((x[10]! + x[6]!) | 0, 7);
    x[2]! ^= rotl((x[14]! + x[10]!) | 0, 9);
    x[6]! ^= rotl((x[2]! + x[14]!) | 0, 13);
    x[10]! ^= rotl((x[6]! + x[2]!) | 0, 18);
    x[3]! ^= rotl((x[15]! + x[11]!) | 0, 7);
    x[7]! ^= rotl((x[3]! + x[15]!) | 0, 9);
    x[11]! ^= rotl((x[7]! + x[3]!) | 0, 13);
    x[15]! ^= rotl((x[11]! + x[7]!) | 0, 18);

    x[1]! ^= rotl((x[0]! + x[3]!) | 0, 7);
    x[2]! ^= rotl((x[1]! + x[0]!) | 0, 9);
    x[3]! ^= rotl((x[2]! + x[1]!) | 0, 13);
    x[0]! ^= rotl((x[3]! + x[2]!) | 0, 18);
    x[6]! ^= rotl((x[5]! + x[4]!) | 0, 7);
    x[7]! ^= rotl((x[6]! + x[5]!) | 0, 9);
    x[4]! ^= rotl((x[7]! + x[6]!) | 0, 13);
    x[5]! ^= rotl((x[4]! + x[7]!) | 0, 18);
    x[11]! ^= rotl((x[10]! + x[9]!) | 0, 7);
    x[8]! ^= rotl((x[11]! + x[10]!) | 0, 9);
    x[9]! ^= rotl((x[8]! + x[11]!) | 0, 13);
    x[10]! ^= rotl((x[9]! + x[8]!) | 0, 18);
    x[12]! ^= rotl((x[15]! + x[14]!) | 0, 7);
    x[13]! ^= rotl((x[12]! + x[15]!) | 0, 9);
    x[14]! ^= rotl((x[13]! + x[12]!) | 0, 13);
    x[15]! ^= rotl((x[14]! + x[13]!) | 0, 18);
  }
}

/** The Salsa20 input block: constants on the diagonal, key, 16 bytes of nonce/counter. */
function initState(key: Uint8Array, input16: Uint8Array): Uint32Array {
  const k = Buffer.from(key.buffer, key.byteOffset, 32);
  const n = Buffer.from(input16.buffer, input16.byteOffset, 16);
  const s = new Uint32Array(16);
  s[0] = SIGMA[0]!;
  s[5] = SIGMA[1]!;
  s[10] = SIGMA[2]!;
  s[15] = SIGMA[3]!;
  for (let i = 0; i < 4; i++) {
    s[1 + i] = k.readUInt32LE(i * 4);
    s[11 + i] = k.readUInt32LE(16 + i * 4);
    s[6 + i] = n.readUInt32LE(i * 4);
  }
  return s;
}

/** HSalsa20: a 32-byte subkey from a 32-byte key and a 16-byte input. */
export function hsalsa20(key: Uint8Array, input16: Uint8Array): Buffer {
  const x = initState(key, input16);
  rounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => {
    out.writeUInt32LE(x[w]! >>> 0, i * 4);
  });
  return out;
}

/**
 * XORs `data` with the XSalsa20 key stream for a 32-byte key and 24-byte nonce, starting `skip` bytes
 * into the stream (secretbox uses the first 32 bytes as its Poly1305 key). Returns a new buffer.
 */
export function xsalsa20Xor(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, skip = 0): Buffer {
  if (key.length !== 32) throw new Error("xsalsa20 key must be 32 bytes");
  if (nonce.length !== 24) throw new Error("xsalsa20 nonce must be 24 bytes");
  const subkey = hsalsa20(key, nonce.subarray(0, 16));
  const input = Buffer.alloc(16);
  input.set(nonce.subarray(16, 24), 0);
  const out = Buffer.alloc(data.length);
  const block = Buffer.alloc(64);
  const x = new Uint32Array(16);
  let pos = -skip;
  for (let counter = 0; pos < data.length; counter++) {
    input.writeUInt32LE(counter >>> 0, 8);
    input.writeUInt32LE(Math.floor(counter / 0x100000000), 12);
    const s = initState(subkey, input);
    x.set(s);
    rounds(x);
    for (let i = 0; i < 16; i++) block.writeUInt32LE((x[i]! + s[i]!) >>> 0, i * 4);
    for (let i = 0; i < 64; i++, pos++) if (pos >= 0 && pos < data.length) out[pos] = data[pos]! ^ block[i]!;
  }
  return out;
}
