import type { Readable } from "node:stream";

/** Why a streamed upload stopped: the first cause, and whether the storage service raised it. */
export interface UploadFailure {
  err: unknown;
  /** True when the service (S3, Azure, GCS) answered with it, so the store explains it as a service error. */
  fromService: boolean;
}

/**
 * What stops a streamed upload, shared by the S3, Azure Blob and GCS stores: the caller's AbortSignal, a failed
 * part, or the body's own error. One AbortController stops every request in flight; the first cause wins and is
 * kept. Stopping destroys the body, which wakes a read that waits on a paused stream. The caller owns the returned
 * object for the length of one `put` and calls `dispose()` in its `finally`.
 */
export interface UploadStop {
  /** Aborted by the first failure; pass it to every request of the upload. */
  stop: AbortController;
  /** Records the first failure (later ones are ignored) and stops the upload. */
  fail(err: unknown, fromService: boolean): void;
  /** The first failure, if any. A function, so TypeScript does not narrow it across the callbacks that set it. */
  failed(): UploadFailure | undefined;
  /** Removes the listeners on the caller's signal and the controller. */
  dispose(): void;
}

export function uploadStop(body: Readable, userSignal: AbortSignal | undefined): UploadStop {
  const stop = new AbortController();
  let failure: UploadFailure | undefined;
  const fail = (err: unknown, fromService: boolean) => {
    if (failure) return;
    failure = { err, fromService };
    stop.abort(err);
  };
  const onUserAbort = () => fail(userSignal?.reason ?? new Error("aborted"), false);
  const onStop = () => body.destroy();
  stop.signal.addEventListener("abort", onStop, { once: true });
  if (userSignal?.aborted) onUserAbort();
  else userSignal?.addEventListener("abort", onUserAbort, { once: true });
  return {
    stop,
    fail,
    failed: () => failure,
    dispose: () => {
      userSignal?.removeEventListener("abort", onUserAbort);
      stop.signal.removeEventListener("abort", onStop);
    },
  };
}
