/**
 * The text forms of keys: `age1…` recipients, recipients files, identity files as age-keygen writes
 * them. Parse errors name the bad recipient (public) but never echo identity file content (secret).
 */
import { bech32Decode } from "./bech32.ts";
import { AgeKeyError } from "./errors.ts";
import {
  decodeHybridIdentityKey,
  decodeHybridRecipientKey,
  generateHybrid,
  HybridIdentity,
  HybridRecipient,
} from "./hybrid.ts";
import type { Identity, Recipient } from "./types.ts";
import {
  decodeIdentityKey,
  decodeRecipientKey,
  generateX25519,
  X25519Identity,
  X25519Recipient,
} from "./x25519.ts";

/**
 * A bad recipient as a message may show it: only what looks like a public key (age1…, ssh-…) is echoed, and
 * shortened; anything else may be a secret pasted in the wrong place (a passphrase, an AGE-SECRET-KEY-1…
 * line) and is not echoed at all.
 */
function shorten(s: string): string {
  if (!/^(age1|ssh-)/i.test(s)) return `(${s.length} characters, not shown)`;
  return `"${s.length > 24 ? s.slice(0, 20) + "…" : s}"`;
}

/** Parses an `age1…` public key. Throws a `AgeKeyError` naming the (public) bad value. */
export function parseRecipient(s: string): Recipient {
  const text = s.trim();
  const key = decodeRecipientKey(text);
  if (key) return new X25519Recipient(key);
  if (text.startsWith("age1pq1")) return parseHybridRecipient(text);
  if (text.startsWith("ssh-")) {
    throw new AgeKeyError(
      `unsupported recipient ${shorten(text)}`,
      "SSH keys are not supported, use an age1… key",
    );
  }
  const decoded = bech32Decode(text);
  if (decoded && decoded.hrp !== "age") {
    throw new AgeKeyError(
      `unsupported recipient type ${shorten(text)}`,
      "only X25519 (age1…) recipients are supported",
    );
  }
  if (/^AGE-SECRET-KEY-/i.test(text)) {
    throw new AgeKeyError(
      "a secret key was given as a recipient",
      "give its public key instead (`age-keygen -y KEYFILE`); save needs only public keys",
    );
  }
  throw new AgeKeyError(`invalid recipient ${shorten(text)}`, "expected an age1… public key");
}

/** An `age1pq1…` post-quantum public key; a `AgeKeyError` names the (public) bad value. */
function parseHybridRecipient(text: string): Recipient {
  const key = decodeHybridRecipientKey(text);
  if (!key) throw new AgeKeyError(`invalid recipient ${shorten(text)}`, "expected an age1pq1… public key");
  try {
    return new HybridRecipient(key);
  } catch (err) {
    if (err instanceof AgeKeyError) throw err;
    throw new AgeKeyError(`invalid recipient ${shorten(text)}: ${(err as Error).message}`);
  }
}

function lines(text: string): { line: string; number: number }[] {
  return text
    .split("\n")
    .map((l, i) => ({ line: l.trim(), number: i + 1 }))
    .filter(({ line }) => line !== "" && !line.startsWith("#"));
}

/**
 * Parses a recipients file as age reads it: one `age1…` key per line, blank lines and `#`
 * comments ignored. Throws a `AgeKeyError` for a bad line or a file without recipients.
 */
export function parseRecipientsFile(text: string): Recipient[] {
  const out: Recipient[] = [];
  for (const { line, number } of lines(text)) {
    try {
      out.push(parseRecipient(line));
    } catch (err) {
      const u = err as AgeKeyError;
      throw new AgeKeyError(`recipients file line ${number}: ${u.message}`, u.hint);
    }
  }
  if (out.length === 0) throw new AgeKeyError("recipients file holds no recipients");
  return out;
}

/**
 * Parses an identity file as age-keygen writes it: `AGE-SECRET-KEY-1…` lines, blank lines and `#`
 * comments ignored, several keys allowed. Throws a `AgeKeyError` that names the line number only,
 * never its content.
 */
export function parseIdentities(text: string): Identity[] {
  const out: Identity[] = [];
  for (const { line, number } of lines(text)) {
    const key = decodeIdentityKey(line);
    if (key) {
      out.push(new X25519Identity(key));
      continue;
    }
    const pqKey = decodeHybridIdentityKey(line);
    if (pqKey) {
      out.push(new HybridIdentity(pqKey));
      continue;
    }
    const hint = line.startsWith("AGE-SECRET-KEY-PQ-")
      ? "expected an AGE-SECRET-KEY-PQ-1… line"
      : line.startsWith("AGE-PLUGIN-")
        ? "age plugins are not supported"
        : "expected an AGE-SECRET-KEY-1… line";
    throw new AgeKeyError(`identity file line ${number} is not a valid age secret key`, hint);
  }
  if (out.length === 0) throw new AgeKeyError("identity file holds no identities");
  return out;
}

/** A new key pair (X25519, or post-quantum MLKEM768-X25519 with `pq`) and its creation time. */
export function generateIdentity(options: { pq?: boolean } = {}): {
  identity: string;
  recipient: string;
  created: Date;
} {
  return { ...(options.pq ? generateHybrid() : generateX25519()), created: new Date() };
}

/** The identity file text age-keygen writes: created time (RFC 3339, UTC), public key, secret key. */
export function identityFileText(gen: { identity: string; recipient: string; created: Date }): string {
  const created = gen.created.toISOString().replace(/\.\d+Z$/, "Z");
  return `# created: ${created}\n# public key: ${gen.recipient}\n${gen.identity}\n`;
}

/** The `age1…` public key of an `AGE-SECRET-KEY-1…` string. Throws a `AgeKeyError` (without the key). */
export function recipientOf(identity: string): string {
  const pqKey = decodeHybridIdentityKey(identity.trim());
  if (pqKey) return new HybridIdentity(pqKey).recipient;
  const key = decodeIdentityKey(identity.trim());
  if (!key) throw new AgeKeyError("not a valid age secret key", "expected an AGE-SECRET-KEY-1… string");
  return new X25519Identity(key).recipient;
}
