import type { UploadStop } from "./upload-stop.ts";

/**
 * Reads the first part of a streamed upload's body (an empty body gives an empty part), which tells a store
 * whether one request will do. Nothing is read once the upload has stopped; a body that fails to read stops it
 * (not the service's doing). Either way the upload's first failure is thrown.
 */
export async function readFirstPart(
  parts: AsyncGenerator<Buffer, void, undefined>,
  upload: Pick<UploadStop, "fail" | "failed">,
): Promise<Buffer> {
  let first: IteratorResult<Buffer> | undefined;
  try {
    if (!upload.failed()) first = await parts.next();
  } catch (err) {
    upload.fail(err, false);
  }
  if (upload.failed() || !first) throw upload.failed()?.err;
  return first.done ? Buffer.alloc(0) : first.value;
}
