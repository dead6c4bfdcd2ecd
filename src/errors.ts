/**
 * Errors that reach a user.
 *
 * Library code throws plain `Error`s with a short lowercase message and adds
 * context at each boundary with `new Error("what failed", { cause })`. Two
 * classes exist because callers branch on them:
 * - `UsageError`: the command line or configuration is wrong (exit code 2);
 * - `Hinted`: any error that knows what the user should do next.
 * `describeError` turns the cause chain into the one line the CLI prints, without secrets.
 */

import { processRedactor } from "./observability/redact.ts";

/** Bad usage: wrong flags, missing arguments, invalid configuration. Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

/** An operational failure that carries advice for the user ("what to do"). */
export class Hinted extends Error {
  override name = "Hinted";
  readonly hint: string;
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.hint = hint;
  }
}

/**
 * The messages of an error and its causes, outermost first, duplicates removed, each without secrets (callers
 * print them: prune's failures, test restore's problems, the daemon's error lines).
 */
export function errorChain(err: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 16; depth++) {
    // One line whatever the cause says (some libraries put stacks or multi-line reports in messages).
    const msg = processRedactor
      .redact(cur instanceof Error ? cur.message : String(cur))
      .replace(/\s*\n\s*/g, " ")
      .trim();
    if (msg && !out.includes(msg)) out.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

/** The first hint found along the cause chain. */
export function errorHint(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 16; depth++) {
    const hint = (cur as { hint?: unknown }).hint;
    if (typeof hint === "string" && hint) return hint;
    cur = cur.cause;
  }
  return undefined;
}

/**
 * One line: `what failed: why (what to do)`. The line passes the process's redactor (observability/redact.ts):
 * causes come from libraries and servers that may echo what they were given (a URL with its password, a key), and
 * this line ends up in error output, logs, Events and status conditions.
 */
export function describeError(err: unknown): string {
  const hint = errorHint(err);
  const line = errorChain(err).join(": ");
  return processRedactor.redact(hint ? `${line} (${hint})` : line);
}

/**
 * True when the error chain contains a UsageError, or a library error of kind "bad-input" (the user's input
 * cannot be used, e.g. age's AgeKeyError): libraries say what kind of failure it was, front ends decide what
 * that means for them (the CLI: exit 2).
 */
export function isUsageError(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 16; depth++) {
    if (cur instanceof UsageError || (cur as { kind?: unknown }).kind === "bad-input") return true;
    cur = cur.cause;
  }
  return false;
}
