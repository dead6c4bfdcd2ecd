/**
 * Why an age file could not be decrypted. Callers (and the C2SP test vectors) tell these apart:
 * - `header`: the header is malformed, truncated, or not an age header at all;
 * - `armor`: the ASCII armor around the file is malformed;
 * - `no-match`: the header is fine but none of the identities unwraps the file key;
 * - `hmac`: a file key was unwrapped but the header MAC does not match;
 * - `payload`: the encrypted payload is modified, reordered, truncated or has trailing data.
 */
export type AgeFailure = "header" | "armor" | "no-match" | "hmac" | "payload";

/** An age file that cannot be decrypted; `failure` says which stage rejected it. */
export class AgeDecryptError extends Error {
  override name = "AgeDecryptError";
  readonly failure: AgeFailure;
  readonly hint: string | undefined;
  constructor(failure: AgeFailure, message: string, hint?: string) {
    super(message);
    this.failure = failure;
    this.hint = hint;
  }
}

/** Shorthand for the header failures thrown while parsing and unwrapping. */
export function headerError(message: string): AgeDecryptError {
  return new AgeDecryptError("header", message);
}

/**
 * A key, recipient, identity or passphrase given to age cannot be used (malformed, of an unsupported type, mixed
 * with kinds it cannot be mixed with). `kind: "bad-input"` tells front ends it is the user's input to fix
 * (the CLI exits 2); the age library knows nothing of flags or exit codes.
 */
export class AgeKeyError extends Error {
  override name = "AgeKeyError";
  readonly kind = "bad-input";
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}
