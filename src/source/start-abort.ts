import type { Readable } from "node:stream";

/**
 * Ties a snapshot call's stream to the caller's abort signal, for the sources that start a call and hand the
 * stream out once its first bytes arrive (etcd's Snapshot, Talos' EtcdSnapshot).
 *
 * After the start the caller holds the stream: an abort destroys it with the signal's reason, which the
 * caller's pipeline reports. Before the start nobody holds it, so an error on it would have no listener and end
 * the process with a stack trace: an abort then destroys it without an error (which cancels the call) and fails
 * the start with the reason instead, through the `reject` given to `failStartWith`.
 */
export function abortSnapshotStart(
  stream: Readable,
  signal: AbortSignal | undefined,
  started: () => boolean,
): { failStartWith(reject: (err: Error) => void): void } {
  let rejectStart: ((err: Error) => void) | undefined;
  const onAbort = () => {
    const reason = signal?.reason instanceof Error ? signal.reason : new Error("aborted");
    if (started()) {
      stream.destroy(reason);
      return;
    }
    stream.destroy();
    rejectStart?.(reason);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  stream.once("close", () => signal?.removeEventListener("abort", onAbort));
  return {
    failStartWith(reject) {
      rejectStart = reject;
    },
  };
}
