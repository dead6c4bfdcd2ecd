/**
 * Google Cloud Storage's immutability mapped onto our `Retention` (S3 Object Lock's three facts) for the GCS
 * store: what a locked upload carries, reading an object's retention back, the bucket check, and the answers
 * GCS gives a delete it refuses.
 *
 * Facts this relies on (Google Cloud Storage JSON API reference, "Objects" and "Buckets" resources; "Object
 * Retention Lock", "Bucket Lock" and "Object holds" guides):
 * - Object retention is enabled per bucket (`gcloud storage buckets create --enable-per-object-retention`); the
 *   bucket resource then says `objectRetention: {mode: "Enabled"}`. On such a bucket an object may carry
 *   `retention: {mode: "Unlocked" | "Locked", retainUntilTime}`, set in the object resource of an insert (for a
 *   resumable upload: the session's initiation). Before that time the object cannot be deleted or replaced;
 *   `Unlocked` can be shortened or removed by someone with storage.objects.overrideUnlockedRetention (our
 *   governance), `Locked` only lengthened (our compliance).
 * - A bucket retention policy (`retentionPolicy: {retentionPeriod (seconds), isLocked}`, "bucket lock") holds
 *   every object for the period from its creation; each object then shows `retentionExpirationTime`. A locked
 *   policy cannot be removed or shortened (compliance); an unlocked one can, by a bucket admin (governance).
 * - `temporaryHold` and `eventBasedHold` are dateless holds, settable on insert, on any bucket; while one is on,
 *   the object cannot be deleted or replaced (our legal hold).
 * - Deleting or replacing a held object fails with 403, reason `retentionPolicyNotMet`, and a message naming the
 *   retention or the hold.
 */
import { UsageError } from "../errors.ts";
import { gcsErrorReason, gcsStatus } from "./gcs-errors.ts";
import { retainUntil } from "./s3-object-lock.ts";
import type { ObjectLockSettings } from "./s3-settings.ts";
import type { Retention } from "./store.ts";

/** The retention fields of an object resource (as the JSON API gives and takes them). */
export interface ObjectRetentionFields {
  retention?: { mode?: string; retainUntilTime?: string } | null;
  temporaryHold?: boolean | null;
  eventBasedHold?: boolean | null;
  /** Set by GCS on objects of a bucket with a retention policy: when the policy stops holding the object. */
  retentionExpirationTime?: string | null;
  timeCreated?: string;
}

/** The bucket fields the store reads. */
export interface BucketRetentionFields {
  objectRetention?: { mode?: string } | null;
  retentionPolicy?: { retentionPeriod?: string | number; isLocked?: boolean; effectiveTime?: string } | null;
}

/** What the bucket holds every object to, when it has a retention policy. */
export interface BucketPolicy {
  periodSeconds: number;
  locked: boolean;
}

/** The object resource fields a write locked by the store's settings carries; none for an empty lock. */
export function lockFields(lock: ObjectLockSettings, now: Date): ObjectRetentionFields {
  return {
    ...(lock.mode && lock.days
      ? {
          retention: {
            mode: lock.mode === "compliance" ? "Locked" : "Unlocked",
            retainUntilTime: retainUntil(lock.days, now).toISOString(),
          },
        }
      : {}),
    ...(lock.legalHold ? { temporaryHold: true } : {}),
  };
}

/**
 * The object resource fields that lock a new object exactly as `retention` says (rekey keeps the lock of what it
 * replaces). A date already past is left out: it holds nothing.
 */
export function retentionFields(retention: Retention, now: Date): ObjectRetentionFields {
  const until = retention.retainUntil;
  return {
    ...(retention.mode && until && until.getTime() > now.getTime()
      ? {
          retention: {
            mode: retention.mode === "compliance" ? "Locked" : "Unlocked",
            retainUntilTime: until.toISOString(),
          },
        }
      : {}),
    ...(retention.legalHold ? { temporaryHold: true } : {}),
  };
}

/** The bucket's retention policy, if it has one with a period. */
export function bucketPolicy(bucket: BucketRetentionFields): BucketPolicy | undefined {
  const period = Number(bucket.retentionPolicy?.retentionPeriod ?? 0);
  if (!Number.isFinite(period) || period <= 0) return undefined;
  return { periodSeconds: period, locked: bucket.retentionPolicy?.isLocked === true };
}

/** Whether the bucket lets objects carry their own retention. */
export function objectRetentionEnabled(bucket: BucketRetentionFields): boolean {
  return bucket.objectRetention?.mode === "Enabled";
}

/**
 * An object's `Retention` from its resource and, when known, its bucket's retention policy: of the object's own
 * retention and the policy's hold, the one that ends last (compliance first on a tie); either hold is our legal
 * hold. An unknown policy (no permission to read the bucket) still counts through the object's
 * `retentionExpirationTime`, as governance (it may be an unlocked policy).
 */
export function retentionFromResource(
  object: ObjectRetentionFields,
  policy: BucketPolicy | undefined,
): Retention {
  const candidates: { mode: "governance" | "compliance"; until: Date }[] = [];
  const own = object.retention;
  if (own?.retainUntilTime && (own.mode === "Locked" || own.mode === "Unlocked")) {
    const until = new Date(own.retainUntilTime);
    if (!Number.isNaN(until.getTime()))
      candidates.push({ mode: own.mode === "Locked" ? "compliance" : "governance", until });
  }
  let policyUntil: Date | undefined;
  if (object.retentionExpirationTime) policyUntil = new Date(object.retentionExpirationTime);
  else if (policy && object.timeCreated)
    policyUntil = new Date(new Date(object.timeCreated).getTime() + policy.periodSeconds * 1000);
  if (policyUntil && !Number.isNaN(policyUntil.getTime()))
    candidates.push({ mode: policy?.locked ? "compliance" : "governance", until: policyUntil });
  const legalHold = object.temporaryHold === true || object.eventBasedHold === true;
  const last = candidates.sort(
    (a, b) =>
      b.until.getTime() - a.until.getTime() ||
      Number(b.mode === "compliance") - Number(a.mode === "compliance"),
  )[0];
  return last ? { mode: last.mode, retainUntil: last.until, legalHold } : { legalHold };
}

/** A 403 that says the object is held (retention, bucket policy or a hold), not that access was denied. */
export function isRetentionRefusal(err: unknown): boolean {
  if (gcsStatus(err) !== 403) return false;
  const reason = gcsErrorReason(err);
  if (reason === "retentionPolicyNotMet") return true;
  const message = err instanceof Error ? err.message : "";
  return /retention|\bhold\b/i.test(message);
}

/** The one-line refusal when a retention is asked for and the bucket cannot keep one. */
export function noObjectRetentionError(bucket: string): UsageError {
  return new UsageError(
    `bucket ${bucket} has no object retention`,
    `use a bucket created with: gcloud storage buckets create gs://${bucket} --enable-per-object-retention, or ask for no object lock`,
  );
}
