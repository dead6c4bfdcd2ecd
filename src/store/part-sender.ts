import { Hinted } from "../errors.ts";
import type { UploadStop } from "./upload-stop.ts";

/** What `sendParts` needs: where parts come from, how one goes out, how many at once, and the upload's stop. */
export interface PartSending<T> {
  /**
   * A part already read, sent first (the stores read one to choose between a single request and an upload in
   * parts). Without it the first part comes from `readPart`.
   */
  first?: Buffer;
  /** The next part, or undefined when the body has ended. A rejection stops the upload as a read failure. */
  readPart: () => Promise<Buffer | undefined>;
  /**
   * Sends the part at `index` (0-based) with its own retries, cut off by the upload's stop signal, and resolves to
   * what finishing the upload needs of it (an ETag, a block id). A rejection stops the upload as a service failure.
   */
  sendPart: (part: Buffer, index: number) => Promise<T>;
  /** Parts in flight at once, at least 1. */
  concurrency: number;
  /**
   * The service's most parts per upload: one more stops the upload, unsent, with a one-line error (a read
   * failure) naming the parts (`name`, e.g. "blocks") and their size, and the `hint` (raise the part size).
   */
  limit?: { parts: number; name: string; partSize: number; hint: string };
  /** The upload's stop (`UploadStop` of upload-stop.ts): failures are recorded there; the loop ends on the first. */
  stop: { fail: UploadStop["fail"]; failed: () => { err: unknown } | undefined };
}

/** What was sent: every part's result in part order, and their bytes. */
export interface SentParts<T> {
  results: T[];
  size: number;
}

/**
 * Sends an upload's parts, up to `concurrency` at once, and returns their results in part order whatever order
 * they finish in. One `readPart` runs at a time, and only while fewer than `concurrency` parts are in flight, so
 * at most `concurrency` parts are held at once (those in flight and the one being read): memory stays within the
 * stores' documented `partSize × (concurrency + 1)`, and the body is read only as fast as parts go out
 * (backpressure). Shared by the S3 multipart and Azure block upload loops. (The GCS store does not use it: its
 * chunks must go one at a time, in order, the last one finalising the object.)
 *
 * Failure: the first one wins (`stop.fail`, which also aborts the requests in flight through the stop's signal).
 * The caller's abort reaches the loop the same way, through `stop`, with its reason as the failure. From the
 * first failure nothing more is read or sent; the parts in flight are waited for (each settles, cut off or not),
 * then `sendParts` rejects with the first failure's error, so the caller can abort the multipart upload or
 * discard the staged blocks knowing no request of the upload is still running.
 *
 * Buffer ownership: a part belongs to `sendParts` from the moment `readPart` (or `first`) hands it over, and is
 * lent to `sendPart` from the call until the promise it returned settles; `sendParts` then drops it and keeps no
 * buffer once it returns. `sendPart` may give the buffer back to the reader's pool (for a later `readPart` to
 * refill) once its request no longer reads it: both stores do so after a successful send only, and leave a
 * failed part's buffer to the garbage collector. A part read after a failure is dropped unsent.
 */
export async function sendParts<T>(sending: PartSending<T>): Promise<SentParts<T>> {
  const { readPart, sendPart, concurrency, limit, stop } = sending;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`sendParts: concurrency must be a whole number of at least 1, not ${concurrency}`);
  const results: T[] = [];
  const inFlight = new Set<Promise<void>>();
  let size = 0;
  let index = 0;
  const read = async (): Promise<Buffer | undefined> => {
    try {
      return await readPart();
    } catch (err) {
      stop.fail(err, false);
      return undefined;
    }
  };
  let part = sending.first ?? (stop.failed() ? undefined : await read());
  while (part !== undefined && !stop.failed()) {
    if (limit && index >= limit.parts) {
      const mib = limit.partSize / (1024 * 1024);
      stop.fail(
        new Hinted(`the object needs more than ${limit.parts} ${limit.name} of ${mib} MiB`, limit.hint),
        false,
      );
      break;
    }
    const at = index++;
    size += part.length;
    let sent: Promise<T>;
    try {
      sent = sendPart(part, at);
    } catch (err) {
      sent = Promise.reject(err);
    }
    const tracked: Promise<void> = sent
      .then(
        (result) => {
          results[at] = result;
        },
        (err) => stop.fail(err, true),
      )
      .finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (stop.failed()) break;
    part = await read();
  }
  await Promise.allSettled(inFlight);
  const failure = stop.failed();
  if (failure) throw failure.err;
  return { results, size };
}
