/** A failure with a condition reason (`SecretNotFound`, `InvalidRecipient`...). */
export class SpecProblem extends Error {
  override name = "SpecProblem";
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/** The condition reason of a failure: a `SpecProblem`'s own, otherwise `fallback`. */
export function reasonOf(err: unknown, fallback: string): string {
  return err instanceof SpecProblem ? err.reason : fallback;
}
