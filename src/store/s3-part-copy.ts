/**
 * Server-side copies on S3, for rewriting the head of a large object without moving its body through this
 * machine: a multipart upload whose first part is sent (the new head plus the start of the rest, since a part
 * other than the last must be at least 5 MiB) and whose other parts are `UploadPartCopy` ranges of the old object.
 * Also the whole-object server-side copy that moves a verified object into place.
 *
 * A service without part copy (`NotImplemented`, HTTP 501) raises `PartCopyUnsupported`; the caller then streams.
 * Every copy is conditional on the source's ETag, so a source replaced meanwhile fails the copy instead of
 * mixing two objects. A failed upload is aborted: S3 shows no object until completion.
 */

import { createHash } from "node:crypto";
import { OWNER_METADATA, type S3Store } from "./s3.ts";
import { httpStatus, s3ErrorCode } from "./s3-errors.ts";
import { retentionHeaders } from "./s3-object-lock.ts";
import type { Retention } from "./store.ts";

const MiB = 1024 * 1024;
/** S3's smallest part other than the last. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part, and the largest object a single CopyObject copies. */
export const MAX_COPY_SIZE = 5 * 1024 * MiB;

/** The service does not implement UploadPartCopy / CopyObject. */
export class PartCopyUnsupported extends Error {
  override name = "PartCopyUnsupported";
}

function isNotImplemented(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === "NotImplemented" || httpStatus(err) === 501;
}

/**
 * `bucket/key` URL-encoded, as x-amz-copy-source wants it. `:` (in every backup's name) stays as it is: a path may
 * hold it unencoded, and s3rver decodes the header with decodeURI, which leaves `%3A` encoded.
 */
function copySource(bucket: string, bucketKey: string): string {
  const encode = (segment: string) => encodeURIComponent(segment).replace(/%3A/gi, ":");
  return `${bucket}/${bucketKey.split("/").map(encode).join("/")}`;
}

/** The first `size` bytes of an object with one ranged GET (fewer when it is shorter). */
export async function readObjectRange(store: S3Store, key: string, size: number): Promise<Buffer> {
  const { client, api, bucketKey, retry, explain } = await store.sdk();
  if (size <= 0) return Buffer.alloc(0);
  try {
    return await retry(async () => {
      const out = await client.send(
        new api.GetObjectCommand({ Bucket: store.bucket, Key: bucketKey(key), Range: `bytes=0-${size - 1}` }),
      );
      return Buffer.from(await out.Body!.transformToByteArray()).subarray(0, size);
    });
  } catch (err) {
    throw explain(`read ${store.location}/${key}`, err);
  }
}

export interface HeadRewrite {
  /** The object whose first `skip` bytes are replaced. */
  source: string;
  /** Where the rewritten object goes (another key: the source is read while the upload runs). */
  target: string;
  head: Buffer;
  skip: number;
  /** Stored as the object's owner metadata (the run that wrote the backup). */
  owner?: string;
  signal?: AbortSignal;
  /** The sent first part's size (head included); at least 5 MiB, the default: as little as S3 allows. */
  firstPartSize?: number;
  /** The size of each copied range; at least 5 MiB, at most 5 GiB. Default 1 GiB. */
  copyPartSize?: number;
}

export interface HeadRewritten {
  size: number;
  /** Body bytes this machine uploaded (the first part). */
  sentBytes: number;
  /** Body bytes it downloaded (the start of the old body that goes into the first part). */
  readBytes: number;
  parts: number;
}

/** True when an object of `size` bytes (after the rewrite) is bigger than the sent first part. */
export function worthPartCopy(size: number, firstPartSize?: number): boolean {
  return size > Math.max(MIN_PART_SIZE, firstPartSize ?? MIN_PART_SIZE);
}

/** Rewrites the head of `source` into `target` with part copies. See the module comment. */
export async function rewriteHeadByPartCopy(store: S3Store, o: HeadRewrite): Promise<HeadRewritten> {
  const { client, api, bucketKey, retry, explain } = await store.sdk();
  const Bucket = store.bucket;
  const SourceKey = bucketKey(o.source);
  const Key = bucketKey(o.target);
  const signal = o.signal;
  const firstPartSize = Math.max(MIN_PART_SIZE, o.firstPartSize ?? MIN_PART_SIZE);
  const copyPartSize = Math.min(MAX_COPY_SIZE, Math.max(MIN_PART_SIZE, o.copyPartSize ?? 1024 * MiB));

  const head = await retry(
    () => client.send(new api.HeadObjectCommand({ Bucket, Key: SourceKey })),
    signal,
  ).catch((err) => {
    throw explain(`stat ${store.location}/${o.source}`, err);
  });
  const size = head.ContentLength ?? 0;
  const etag = head.ETag;
  if (size < o.skip) throw new Error(`${o.source} is shorter than its header`);
  const rest = size - o.skip;
  const inFirst = Math.min(rest, Math.max(0, firstPartSize - o.head.length));
  if (inFirst >= rest) throw new Error("the object is too small for a part-copy rewrite (rewrite it whole)");

  // The start of the old body, which goes into the first part with the new head (read once the copies worked).
  const readStart = () =>
    retry(async () => {
      const out = await client.send(
        new api.GetObjectCommand({
          Bucket,
          Key: SourceKey,
          Range: `bytes=${o.skip}-${o.skip + inFirst - 1}`,
          ...(etag ? { IfMatch: etag } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
      const bytes = Buffer.from(await out.Body!.transformToByteArray());
      if (bytes.length !== inFirst)
        throw new Error(`range read returned ${bytes.length} of ${inFirst} bytes`);
      return bytes;
    }, signal).catch((err) => {
      throw explain(`read ${store.location}/${o.source}`, err);
    });

  const s = store.settings;
  const created = await retry(() =>
    client.send(
      new api.CreateMultipartUploadCommand({
        Bucket,
        Key,
        ContentType: "application/octet-stream",
        ...(s.sse ? { ServerSideEncryption: s.sse } : {}),
        ...(s.sseKmsKeyId ? { SSEKMSKeyId: s.sseKmsKeyId } : {}),
        ...(s.storageClass ? { StorageClass: s.storageClass as "STANDARD" } : {}),
        ...(o.owner ? { Metadata: { [OWNER_METADATA]: o.owner } } : {}),
      }),
    ),
  ).catch((err) => {
    throw explain(`upload ${store.location}/${o.target}`, err);
  });
  const UploadId = created.UploadId;
  if (!UploadId) throw new Error("S3 returned no upload id");
  const parts: { PartNumber: number; ETag: string }[] = [];
  try {
    let PartNumber = 1;
    for (let from = o.skip + inFirst; from < size; from += copyPartSize) {
      const to = Math.min(size, from + copyPartSize) - 1;
      PartNumber++;
      const n = PartNumber;
      const copied = await retry(
        () =>
          client.send(
            new api.UploadPartCopyCommand({
              Bucket,
              Key,
              UploadId,
              PartNumber: n,
              CopySource: copySource(Bucket, SourceKey),
              CopySourceRange: `bytes=${from}-${to}`,
              ...(etag ? { CopySourceIfMatch: etag } : {}),
            }),
            signal ? { abortSignal: signal } : {},
          ),
        signal,
      );
      const partEtag = copied.CopyPartResult?.ETag;
      if (!partEtag) throw new Error(`S3 returned no ETag for copied part ${n}`);
      parts.push({ PartNumber: n, ETag: partEtag });
    }
    // The sent part last: a service without part copy has refused the first copy before anything was sent.
    const start = await readStart();
    const first = Buffer.concat([o.head, start]);
    const sent = await retry(
      () =>
        client.send(
          new api.UploadPartCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: 1,
            Body: first,
            ContentLength: first.length,
            // Checked by the service; also what buckets with Object Lock require of every part sent.
            ContentMD5: createHash("md5").update(first).digest("base64"),
          }),
          signal ? { abortSignal: signal } : {},
        ),
      signal,
    );
    parts.push({ PartNumber: 1, ETag: sent.ETag ?? "" });
    parts.sort((x, y) => x.PartNumber - y.PartNumber);
    await retry(() =>
      client.send(
        new api.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      ),
    );
    return { size: o.head.length + rest, sentBytes: first.length, readBytes: inFirst, parts: parts.length };
  } catch (err) {
    await client.send(new api.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
    if (isNotImplemented(err))
      throw new PartCopyUnsupported(`${store.location} does not implement UploadPartCopy`);
    throw explain(`upload ${store.location}/${o.target}`, err);
  }
}

/**
 * Copies `from` over `to` inside the bucket (metadata kept), conditional on `from`'s ETag: a CopyObject up to
 * 5 GiB, part copies beyond. Throws `PartCopyUnsupported` where the service has no server-side copy.
 * A copy never inherits the source's Object Lock; `retention` locks the new version of `to` in the same request
 * (rekey: the lock of the version it replaces), so it is never current unlocked.
 */
export async function copyObjectInBucket(
  store: S3Store,
  from: string,
  to: string,
  signal?: AbortSignal,
  retention?: Retention,
): Promise<void> {
  const { client, api, bucketKey, retry, explain } = await store.sdk();
  const Bucket = store.bucket;
  const FromKey = bucketKey(from);
  const Key = bucketKey(to);
  const s = store.settings;
  const stored = {
    ...(s.sse ? { ServerSideEncryption: s.sse } : {}),
    ...(s.sseKmsKeyId ? { SSEKMSKeyId: s.sseKmsKeyId } : {}),
    ...(s.storageClass ? { StorageClass: s.storageClass as "STANDARD" } : {}),
    ...(retention ? retentionHeaders(retention, new Date()) : {}),
  };
  try {
    const head = await retry(() => client.send(new api.HeadObjectCommand({ Bucket, Key: FromKey })), signal);
    const size = head.ContentLength ?? 0;
    const etag = head.ETag;
    if (size <= MAX_COPY_SIZE) {
      await retry(
        () =>
          client.send(
            new api.CopyObjectCommand({
              Bucket,
              Key,
              CopySource: copySource(Bucket, FromKey),
              MetadataDirective: "COPY",
              ...(etag ? { CopySourceIfMatch: etag } : {}),
              ...stored,
            }),
          ),
        signal,
      );
      return;
    }
    const created = await retry(() =>
      client.send(
        new api.CreateMultipartUploadCommand({
          Bucket,
          Key,
          ContentType: head.ContentType ?? "application/octet-stream",
          ...(head.Metadata ? { Metadata: head.Metadata } : {}),
          ...stored,
        }),
      ),
    );
    const UploadId = created.UploadId!;
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let off = 0, n = 1; off < size; off += MAX_COPY_SIZE, n++) {
        const PartNumber = n;
        const range = `bytes=${off}-${Math.min(size, off + MAX_COPY_SIZE) - 1}`;
        const out = await retry(
          () =>
            client.send(
              new api.UploadPartCopyCommand({
                Bucket,
                Key,
                UploadId,
                PartNumber,
                CopySource: copySource(Bucket, FromKey),
                CopySourceRange: range,
                ...(etag ? { CopySourceIfMatch: etag } : {}),
              }),
            ),
          signal,
        );
        parts.push({ PartNumber, ETag: out.CopyPartResult?.ETag ?? "" });
      }
      await retry(() =>
        client.send(
          new api.CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      );
    } catch (err) {
      await client.send(new api.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
      throw err;
    }
  } catch (err) {
    if (isNotImplemented(err))
      throw new PartCopyUnsupported(`${store.location} does not implement CopyObject`);
    throw explain(`copy ${store.location}/${from} to ${to}`, err);
  }
}
