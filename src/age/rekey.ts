/**
 * Rekeying an age file: the same file key wrapped for other recipients, so only the header changes and the
 * payload (nonce and sealed chunks) stays byte for byte what it was. Whoever holds one identity of the file
 * can give it new recipients without decrypting, or even reading, the payload.
 */

import { unlock } from "./decrypt.ts";
import { checkRecipients } from "./encrypt.ts";
import { AgeDecryptError, headerError } from "./errors.ts";
import { encodeHeader, type Header, MAX_HEADER_SIZE, readHeader, verifyHeaderMac } from "./header.ts";
import type { Identity, Recipient } from "./types.ts";

/** A binary age file's header as read from its first bytes. */
export interface OpenedHeader {
  header: Header;
  /** The header's exact bytes (`header.size` of them). */
  bytes: Buffer;
}

/**
 * Reads the header from the start of a binary age file, pulling chunks from `chunks` until it is complete.
 * Throws an `AgeDecryptError` ("header") for an armored file (rekeying rewrites bytes at fixed offsets, which the
 * armor's base64 does not have), for anything that is not an age header, and for a file that ends inside it.
 */
export async function readHeaderFrom(chunks: AsyncIterable<Buffer>): Promise<OpenedHeader> {
  let seen = Buffer.alloc(0);
  for await (const chunk of chunks) {
    seen = Buffer.concat([seen, chunk]);
    if (seen[0] === 0x2d /* "-": the armor's first line */) {
      throw headerError("the file is ASCII-armored; only binary age files can be rekeyed");
    }
    const header = readHeader(seen);
    if (header) return { header, bytes: Buffer.from(seen.subarray(0, header.size)) };
    if (seen.length > MAX_HEADER_SIZE) throw headerError("header is too large");
  }
  if (seen.length === 0) throw headerError("not an age file");
  throw headerError("file is truncated");
}

/**
 * The file key of a parsed header: one of `identities` unwraps it and the header MAC verifies under it.
 * Throws an `AgeDecryptError`: "no-match" when no identity is a recipient, "hmac" when the header was changed.
 */
export async function unwrapFileKey(header: Header, identities: Identity[]): Promise<Uint8Array> {
  return await unlock(header, identities);
}

/**
 * A new header for `fileKey`, wrapped to `recipients` (refused as `save` refuses them: none, a passphrase
 * beside others, post-quantum beside classic) and authenticated with a new MAC. Followed by the old file's
 * payload, it is a complete age file for the new recipients.
 */
export async function rewrapHeader(fileKey: Uint8Array, recipients: Recipient[]): Promise<Buffer> {
  checkRecipients(recipients);
  if (fileKey.length !== 16) throw new Error("file key is not 16 bytes");
  const stanzas = (await Promise.all(recipients.map((r) => r.wrapFileKey(fileKey)))).flat();
  return encodeHeader(stanzas, fileKey);
}

/**
 * Checks that `bytes` start with a well-formed header that `fileKey` authenticates; returns its size.
 * Used on a rewritten object before it replaces the old one.
 */
export function checkHeader(bytes: Buffer, fileKey: Uint8Array): number {
  const header = readHeader(bytes);
  if (!header) throw headerError("file is truncated");
  if (!verifyHeaderMac(header, fileKey)) {
    throw new AgeDecryptError(
      "hmac",
      "header MAC mismatch: the rewritten header does not match the file key",
    );
  }
  return header.size;
}
