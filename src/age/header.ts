/**
 * The age v1 header: the version line, recipient stanzas, and the `---` line with the HMAC.
 *
 * ```
 * age-encryption.org/v1
 * -> X25519 <share>
 * <body, base64 in 64-column lines, the last one shorter (possibly empty)>
 * --- <base64 HMAC-SHA256 of everything up to and including "---">
 * ```
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { decodeCanonical, encodeUnpadded } from "./base64.ts";
import { headerError } from "./errors.ts";
import { hkdfSha256 } from "./primitives.ts";
import type { Stanza } from "./types.ts";

const MAGIC = "age-encryption.org/";
const VERSION_LINE = "age-encryption.org/v1\n";
const COLUMNS = 64;
/**
 * A header bigger than this is refused rather than buffered (about 10,000 X25519 recipients, or 670
 * post-quantum ones).
 */
export const MAX_HEADER_SIZE = 1 << 20;
const ARGUMENT = /^[\x21-\x7e]+$/;
const BODY_LINE = /^[A-Za-z0-9+/]*$/;
const NEWLINE = 0x0a;

/** A parsed header. `macInput` is the exact bytes the MAC covers; `size` counts the final newline. */
export interface Header {
  stanzas: Stanza[];
  macInput: Buffer;
  mac: Buffer;
  size: number;
}

/** True when `buf` starts like an age file (or is a prefix of such a start). */
function startsLikeAge(buf: Buffer): boolean {
  const n = Math.min(buf.length, MAGIC.length);
  return buf.toString("latin1", 0, n) === MAGIC.slice(0, n);
}

/**
 * Parses the header at the start of `buf`. Returns null when `buf` ends before the header does
 * (call again with more bytes); throws an `AgeDecryptError` ("header") as soon as the bytes seen
 * cannot be an age v1 header, so garbage is never buffered.
 */
export function readHeader(buf: Buffer): Header | null {
  if (!startsLikeAge(buf)) throw headerError("not an age file");
  const intro = Math.min(buf.length, VERSION_LINE.length);
  if (buf.toString("latin1", 0, intro) !== VERSION_LINE.slice(0, intro)) {
    throw headerError("unsupported age format version");
  }
  if (buf.length < VERSION_LINE.length) return null;
  const stanzas: Stanza[] = [];
  let pos = VERSION_LINE.length;
  for (;;) {
    const end = buf.indexOf(NEWLINE, pos);
    if (end < 0) return tooBigCheck(buf);
    const line = buf.toString("latin1", pos, end);
    if (line.startsWith("---")) {
      if (!line.startsWith("--- ")) throw headerError("malformed header MAC line");
      const mac = decodeCanonical(line.slice(4));
      if (mac?.length !== 32) throw headerError("malformed header MAC");
      return { stanzas, macInput: buf.subarray(0, pos + 3), mac, size: end + 1 };
    }
    if (!line.startsWith("-> ")) throw headerError("malformed header: expected a stanza or the MAC line");
    const args = line.slice(3).split(" ");
    for (const a of args) if (!ARGUMENT.test(a)) throw headerError("malformed stanza arguments");
    let body = "";
    pos = end + 1;
    for (;;) {
      const lineEnd = buf.indexOf(NEWLINE, pos);
      if (lineEnd < 0) return tooBigCheck(buf);
      const bodyLine = buf.toString("latin1", pos, lineEnd);
      if (bodyLine.length > COLUMNS || !BODY_LINE.test(bodyLine)) throw headerError("malformed stanza body");
      body += bodyLine;
      pos = lineEnd + 1;
      // A full-width line means the body continues; a shorter one (even empty) ends it.
      if (bodyLine.length < COLUMNS) break;
    }
    const decoded = decodeCanonical(body);
    if (!decoded) throw headerError("stanza body is not canonical base64");
    stanzas.push({ type: args[0]!, args: args.slice(1), body: decoded });
  }
}

function tooBigCheck(buf: Buffer): null {
  if (buf.length > MAX_HEADER_SIZE) throw headerError("header is too large");
  return null;
}

/** The header up to and including `---`, which is what the MAC covers. */
export function encodeHeaderWithoutMac(stanzas: Stanza[]): Buffer {
  let s = VERSION_LINE;
  for (const st of stanzas) {
    for (const a of [st.type, ...st.args]) {
      if (!ARGUMENT.test(a)) throw new Error("invalid stanza argument");
    }
    s += "-> " + [st.type, ...st.args].join(" ") + "\n";
    const body = encodeUnpadded(st.body);
    for (let i = 0; i + COLUMNS <= body.length; i += COLUMNS) s += body.slice(i, i + COLUMNS) + "\n";
    s += body.slice(body.length - (body.length % COLUMNS)) + "\n";
  }
  return Buffer.from(s + "---", "latin1");
}

/** HMAC-SHA256 of `macInput` under HKDF(fileKey, "", "header"). */
export function headerMac(fileKey: Uint8Array, macInput: Uint8Array): Buffer {
  return createHmac("sha256", hkdfSha256(fileKey, Buffer.alloc(0), "header"))
    .update(macInput)
    .digest();
}

/** The complete encoded header for `stanzas`, authenticated with `fileKey`. */
export function encodeHeader(stanzas: Stanza[], fileKey: Uint8Array): Buffer {
  const macInput = encodeHeaderWithoutMac(stanzas);
  const mac = headerMac(fileKey, macInput);
  return Buffer.concat([macInput, Buffer.from(" " + encodeUnpadded(mac) + "\n", "latin1")]);
}

/** True when the header's MAC verifies under `fileKey` (constant-time comparison). */
export function verifyHeaderMac(header: Header, fileKey: Uint8Array): boolean {
  return timingSafeEqual(headerMac(fileKey, header.macInput), header.mac);
}
