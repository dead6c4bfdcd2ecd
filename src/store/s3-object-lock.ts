/**
 * S3 Object Lock for the S3 store: the headers a locked write carries, the bucket check, reading an object's
 * retention, and the version-aware reads and deletes a lock-enabled (hence versioned) bucket needs.
 *
 * Facts this relies on (AWS S3 user guide, "Using S3 Object Lock"; checked on MinIO by
 * test/peers/minio-object-lock.test.ts):
 * - Object Lock is enabled per bucket, at creation (`--object-lock-enabled-for-bucket`) or later on a versioned
 *   bucket; it implies versioning. `GetObjectLockConfiguration` answers `ObjectLockEnabled: Enabled`, or
 *   `ObjectLockConfigurationNotFoundError` for a bucket without it.
 * - A retention (`x-amz-object-lock-mode` GOVERNANCE|COMPLIANCE with `x-amz-object-lock-retain-until-date`) and a
 *   legal hold (`x-amz-object-lock-legal-hold: ON`) are set per object version, on PutObject or on
 *   CreateMultipartUpload; such a request, and every UploadPart of such an upload, must carry Content-MD5 or an
 *   `x-amz-checksum-*` header, whatever the client's checksum setting.
 * - A locked version cannot be deleted by version id before its date (compliance: by nobody; governance: only
 *   with `x-amz-bypass-governance-retention` and s3:BypassGovernanceRetention, which we never send) nor while a
 *   legal hold is on. A DeleteObject without version id always "succeeds": it only stacks a delete marker over
 *   the data, which stays (and is billed).
 * So on such a bucket the store deletes by version id (each version of the key, then the markers), which frees
 * the data or fails; and it lists and reads the newest version that holds data, so a delete marker someone else
 * put over a locked backup does not hide it.
 */
import { createHash } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";
import { UsageError } from "../errors.ts";
import { httpStatus, s3ErrorCode } from "./s3-errors.ts";
import type { ObjectLockSettings } from "./s3-settings.ts";
import { NO_RETENTION, type Retention } from "./store.ts";

const DAY_MS = 86_400_000;

/** What the lock functions need of the store: its client, the SDK module, the bucket and its retry policy. */
export interface LockContext {
  s3: S3Client;
  api: typeof import("@aws-sdk/client-s3");
  bucket: string;
  retry<T>(operation: () => Promise<T>): Promise<T>;
}

/** The SDK fields a locked PutObject / CreateMultipartUpload carries; `now` is the write's time. */
export function lockHeaders(
  lock: ObjectLockSettings,
  now: Date,
): {
  ObjectLockMode?: "GOVERNANCE" | "COMPLIANCE";
  ObjectLockRetainUntilDate?: Date;
  ObjectLockLegalHoldStatus?: "ON";
} {
  return {
    ...(lock.mode && lock.days
      ? {
          ObjectLockMode: lock.mode === "compliance" ? "COMPLIANCE" : "GOVERNANCE",
          ObjectLockRetainUntilDate: retainUntil(lock.days, now),
        }
      : {}),
    ...(lock.legalHold ? { ObjectLockLegalHoldStatus: "ON" as const } : {}),
  };
}

/**
 * The SDK fields that lock a new object version exactly as `retention` says (rekey copies the replaced object's
 * lock onto its replacement). A retain-until date already past is left out: S3 refuses it, and it holds nothing.
 */
export function retentionHeaders(retention: Retention, now: Date): ReturnType<typeof lockHeaders> {
  const until = retention.retainUntil;
  return {
    ...(retention.mode && until && until.getTime() > now.getTime()
      ? {
          ObjectLockMode: retention.mode === "compliance" ? "COMPLIANCE" : "GOVERNANCE",
          ObjectLockRetainUntilDate: until,
        }
      : {}),
    ...(retention.legalHold ? { ObjectLockLegalHoldStatus: "ON" as const } : {}),
  };
}

/**
 * The retain-until date of a write at `now` locked for `days`: whole seconds (S3 keeps no more), rounded up so
 * the object is never kept less than asked.
 */
export function retainUntil(days: number, now: Date): Date {
  return new Date(Math.ceil((now.getTime() + days * DAY_MS) / 1000) * 1000);
}

/** Content-MD5 of a body: the integrity header S3 requires on locked writes and their parts. */
export function contentMd5(body: Uint8Array): string {
  return createHash("md5").update(body).digest("base64");
}

/** An object's retention from a HeadObject / GetObject answer (absent fields: none). */
export function retentionFromHead(head: {
  ObjectLockMode?: string | undefined;
  ObjectLockRetainUntilDate?: Date | undefined;
  ObjectLockLegalHoldStatus?: string | undefined;
}): Retention {
  const mode = head.ObjectLockMode?.toLowerCase();
  const legalHold = head.ObjectLockLegalHoldStatus === "ON";
  if ((mode !== "governance" && mode !== "compliance") || !head.ObjectLockRetainUntilDate) {
    return legalHold ? { legalHold } : NO_RETENTION;
  }
  return { mode, retainUntil: new Date(head.ObjectLockRetainUntilDate), legalHold };
}

/**
 * Whether the bucket has Object Lock enabled: `true`, `false` (no configuration), or `undefined` when the
 * service would not say (no permission for s3:GetBucketObjectLockConfiguration, a service without the API).
 */
export async function bucketLockEnabled(ctx: LockContext): Promise<boolean | undefined> {
  try {
    const out = await ctx.retry(() =>
      ctx.s3.send(new ctx.api.GetObjectLockConfigurationCommand({ Bucket: ctx.bucket })),
    );
    return out.ObjectLockConfiguration?.ObjectLockEnabled === "Enabled";
  } catch (err) {
    const code = s3ErrorCode(err);
    if (code === "ObjectLockConfigurationNotFoundError" || code === "ObjectLockConfigurationNotFound")
      return false;
    if (code === "NoSuchBucket") throw err;
    if (code === "AccessDenied" || httpStatus(err) === 403) return undefined;
    if (code === "NotImplemented" || httpStatus(err) === 501) return false;
    throw err;
  }
}

/** The one-line refusal when lock is asked for and the bucket cannot do it. */
export function noObjectLockError(bucket: string, lock: ObjectLockSettings): UsageError {
  // Worded for every front end (CLI flags, config file, operator resource): what was asked for, not a flag.
  const what = lock.mode ? "no object lock" : "no legal hold";
  return new UsageError(
    `bucket ${bucket} has no Object Lock`,
    `create it with aws s3api create-bucket --object-lock-enabled-for-bucket, or ask for ${what}`,
  );
}

/** One version (or delete marker) of a key. */
export interface KeyVersion {
  key: string;
  versionId: string;
  deleteMarker: boolean;
  isLatest: boolean;
  lastModified: Date;
  size: number;
}

/** Every version and delete marker under `prefix` (full keys), page by page, in the service's order. */
export async function* listVersions(ctx: LockContext, prefix: string): AsyncIterable<KeyVersion[]> {
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  for (;;) {
    const markers = {
      ...(KeyMarker ? { KeyMarker } : {}),
      ...(VersionIdMarker ? { VersionIdMarker } : {}),
    };
    const page = await ctx.retry(() =>
      ctx.s3.send(
        new ctx.api.ListObjectVersionsCommand({
          Bucket: ctx.bucket,
          ...(prefix ? { Prefix: prefix } : {}),
          ...markers,
        }),
      ),
    );
    const out: KeyVersion[] = [];
    for (const v of page.Versions ?? []) {
      if (!v.Key || !v.VersionId) continue;
      out.push({
        key: v.Key,
        versionId: v.VersionId,
        deleteMarker: false,
        isLatest: v.IsLatest === true,
        lastModified: v.LastModified ?? new Date(0),
        size: v.Size ?? 0,
      });
    }
    for (const m of page.DeleteMarkers ?? []) {
      if (!m.Key || !m.VersionId) continue;
      out.push({
        key: m.Key,
        versionId: m.VersionId,
        deleteMarker: true,
        isLatest: m.IsLatest === true,
        lastModified: m.LastModified ?? new Date(0),
        size: 0,
      });
    }
    yield out;
    if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextVersionIdMarker)) return;
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  }
}

/** The versions that hold data, newest first. */
function newestFirst(versions: KeyVersion[]): KeyVersion[] {
  return versions
    .filter((v) => !v.deleteMarker)
    .sort(
      (a, b) =>
        Number(b.isLatest) - Number(a.isLatest) || b.lastModified.getTime() - a.lastModified.getTime(),
    );
}

/**
 * Per key under `prefix`, the newest version that holds data, and whether a delete marker stands over it.
 * Keys with only delete markers are left out. Memory: one entry per key under the prefix.
 */
export async function latestDataVersions(
  ctx: LockContext,
  prefix: string,
): Promise<{ version: KeyVersion; behindDeleteMarker: boolean }[]> {
  const byKey = new Map<string, KeyVersion[]>();
  for await (const page of listVersions(ctx, prefix)) {
    for (const v of page) {
      const list = byKey.get(v.key);
      if (list) list.push(v);
      else byKey.set(v.key, [v]);
    }
  }
  const out: { version: KeyVersion; behindDeleteMarker: boolean }[] = [];
  for (const versions of byKey.values()) {
    const data = newestFirst(versions)[0];
    if (!data) continue;
    out.push({ version: data, behindDeleteMarker: !data.isLatest });
  }
  return out;
}

/** Every version and marker of exactly `objectKey` (a full key). */
export async function versionsOfKey(ctx: LockContext, objectKey: string): Promise<KeyVersion[]> {
  const out: KeyVersion[] = [];
  for await (const page of listVersions(ctx, objectKey)) out.push(...page.filter((v) => v.key === objectKey));
  return out;
}

/** The newest version of `objectKey` that holds data, when the newest of all is a delete marker; else null. */
export async function hiddenVersion(ctx: LockContext, objectKey: string): Promise<KeyVersion | null> {
  const versions = await versionsOfKey(ctx, objectKey);
  const data = newestFirst(versions)[0];
  return data && !data.isLatest ? data : null;
}

/**
 * Deletes `objectKey` for good on a versioned bucket: every version that holds data, newest first, then the
 * delete markers (so a failure leaves the data listed, not hidden). A locked version makes it throw, with what
 * is left intact. A key without versions is gone already.
 */
export async function deleteAllVersions(ctx: LockContext, objectKey: string): Promise<void> {
  const versions = await versionsOfKey(ctx, objectKey);
  const order = [...newestFirst(versions), ...versions.filter((v) => v.deleteMarker)];
  for (const v of order) {
    await ctx.retry(() =>
      ctx.s3.send(
        new ctx.api.DeleteObjectCommand({ Bucket: ctx.bucket, Key: objectKey, VersionId: v.versionId }),
      ),
    );
  }
}

/** True for the answer to deleting a locked version (AWS: AccessDenied; MinIO: InvalidRequest "WORM protected"). */
export function isLockRefusal(err: unknown): boolean {
  const code = s3ErrorCode(err);
  const message = err instanceof Error ? err.message : "";
  return code === "AccessDenied" || httpStatus(err) === 403 || /WORM|object lock|retention/i.test(message);
}
