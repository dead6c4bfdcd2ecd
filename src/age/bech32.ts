/**
 * Bech32 (BIP 173, the original checksum constant 1) as age uses it for `age1…` recipients and
 * `AGE-SECRET-KEY-1…` identities. Unlike BIP 173, age does not cap the string at 90 characters.
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function expandHrp(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

function toWords(bytes: Uint8Array): number[] {
  const words: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      words.push((acc >>> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  return words;
}

function fromWords(words: number[]): Uint8Array | null {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = (acc << 5) | w;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  // Leftover bits are padding: fewer than 5 of them, all zero, or the encoding is not canonical.
  if (bits >= 5 || acc !== 0) return null;
  return Uint8Array.from(out);
}

/** Encodes `data` under the human-readable part `hrp`; lowercase unless `upper`. */
export function bech32Encode(hrp: string, data: Uint8Array, upper = false): string {
  const lowerHrp = hrp.toLowerCase();
  const words = toWords(data);
  const mod = polymod([...expandHrp(lowerHrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  let s = lowerHrp + "1";
  for (const w of words) s += CHARSET[w];
  for (let i = 0; i < 6; i++) s += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return upper ? s.toUpperCase() : s;
}

/**
 * Decodes a Bech32 string. Returns null when it is not valid Bech32: mixed case, bad characters,
 * wrong checksum, or non-zero padding. The returned `hrp` is lowercase.
 */
export function bech32Decode(s: string): { hrp: string; data: Uint8Array } | null {
  if (s !== s.toLowerCase() && s !== s.toUpperCase()) return null;
  const lower = s.toLowerCase();
  const sep = lower.lastIndexOf("1");
  if (sep < 1 || sep + 7 > lower.length) return null;
  const hrp = lower.slice(0, sep);
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) return null;
  }
  const words: number[] = [];
  for (let i = sep + 1; i < lower.length; i++) {
    const w = CHARSET.indexOf(lower[i]!);
    if (w < 0) return null;
    words.push(w);
  }
  if (polymod([...expandHrp(hrp), ...words]) !== 1) return null;
  const data = fromWords(words.slice(0, words.length - 6));
  return data ? { hrp, data } : null;
}
