import type { UploadFailure } from "./upload-stop.ts";

/**
 * The error for a store operation that failed: `what` was being done, and the cause is the store's one-line
 * reading of the service's error. An abort stays the cause as it is: the caller stopped the operation, and there
 * is nothing about the service to explain.
 */
export function failedOperation(what: string, err: unknown, explain: (err: unknown) => Error): Error {
  if (err instanceof Error && err.name === "AbortError") return new Error(what, { cause: err });
  return new Error(what, { cause: explain(err) });
}

/**
 * The error for a streamed upload that stopped on `failure`: a service's error is explained (`explain`, as for any
 * failed operation of the store); the body's own error or the caller's abort is the cause as it is.
 */
export function failedUpload(
  what: string,
  failure: UploadFailure,
  explain: (what: string, err: unknown) => Error,
): Error {
  if (failure.fromService) return explain(what, failure.err);
  return new Error(what, { cause: failure.err });
}
