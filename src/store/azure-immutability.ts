/**
 * Version-level immutability (Azure's WORM policies on blob versions) for the Azure Blob store: what a locked
 * write carries, reading a blob's policy back as the store contract's `Retention`, and the container check.
 *
 * Facts this relies on (Azure docs "Version-level WORM policies for immutable blob data", "Configure immutability
 * policies for blob versions", and the Blob REST API pages Put Blob, Put Block List, Get Blob Properties, Get
 * Container Properties, List Blobs, Delete Blob):
 * - A container supports policies on blob versions when it was created with version-level immutability (`az
 *   storage container-rm create --enable-vlw`), migrated to it (`az storage container-rm migrate-vlw`), or its
 *   account has it enabled; it requires blob versioning. Get Container Properties then answers
 *   `x-ms-immutable-storage-with-versioning-enabled: true`.
 * - Put Blob and Put Block List take `x-ms-immutability-policy-until-date` (RFC 1123, whole seconds) with
 *   `x-ms-immutability-policy-mode: Unlocked|Locked`, and `x-ms-legal-hold: true`; the new version carries them.
 *   An `Unlocked` policy can be shortened or removed by someone allowed to; a `Locked` one only extended. Both keep
 *   the version from being deleted or changed until the date; a legal hold keeps it until lifted. So `governance`
 *   maps to `Unlocked` and `compliance` to `Locked`.
 * - Get Blob Properties, and List Blobs with `include=immutabilitypolicy,legalhold`, answer the same three facts.
 * - Overwriting a blob creates a new current version; the previous one keeps its policy. Deleting the current
 *   version turns it into a previous version, retained until deleted by version id; deleting a held version is
 *   refused with 409 `BlobImmutableDueToPolicy`.
 * So on such a container the store deletes a key by all its versions (after checking none is held), and a rekey's
 * overwrite leaves the replaced version under its lock, as S3 Object Lock does.
 *
 * Azurite (3.35) implements none of it (Set Blob Immutability Policy and Set Legal Hold answer 501, the headers on
 * writes are ignored, containers never report the feature): the write, read and delete paths are checked against
 * a stand-in that answers as the REST pages document (test/fixtures/azure-blob-standin.ts).
 */
import { UsageError } from "../errors.ts";
import type { ObjectLockSettings } from "./s3-settings.ts";
import { NO_RETENTION, type Retention } from "./store.ts";

const DAY_MS = 86_400_000;

/** The SDK's options that lock a new blob version (Put Blob, Put Block List). Empty: nothing locked. */
export interface ImmutabilityFields {
  immutabilityPolicy?: { expiriesOn: Date; policyMode: "Unlocked" | "Locked" };
  legalHold?: true;
}

/** What a write of backup data at `now` carries under the configured lock. */
export function lockFields(lock: ObjectLockSettings, now: Date): ImmutabilityFields {
  return {
    ...(lock.mode && lock.days
      ? {
          immutabilityPolicy: {
            expiriesOn: policyUntil(lock.days, now),
            policyMode: lock.mode === "compliance" ? ("Locked" as const) : ("Unlocked" as const),
          },
        }
      : {}),
    ...(lock.legalHold ? { legalHold: true as const } : {}),
  };
}

/**
 * What a write carries to lock its version exactly as `retention` says (rekey keeps the lock of what it replaces).
 * A date already past is left out (it would hold nothing, and Azure refuses it); a legal hold is always kept.
 */
export function retentionFields(retention: Retention, now: Date): ImmutabilityFields {
  const until = retention.retainUntil;
  return {
    ...(retention.mode && until && until.getTime() > now.getTime()
      ? {
          immutabilityPolicy: {
            // The header carries whole seconds: round up, so that the copy is never held less than the original.
            expiriesOn: new Date(Math.ceil(until.getTime() / 1000) * 1000),
            policyMode: retention.mode === "compliance" ? ("Locked" as const) : ("Unlocked" as const),
          },
        }
      : {}),
    ...(retention.legalHold ? { legalHold: true as const } : {}),
  };
}

/**
 * The expiry of a write at `now` locked for `days`: whole seconds (the header's RFC 1123 date keeps no more),
 * rounded up so that the blob is never held less than asked.
 */
export function policyUntil(days: number, now: Date): Date {
  return new Date(Math.ceil((now.getTime() + days * DAY_MS) / 1000) * 1000);
}

/**
 * A blob version's retention from Get Blob Properties or a listing: `Locked` is compliance; `Unlocked` (and any
 * other mode Azure may report with a date, such as `Mutable`) counts as governance, which prune treats as held
 * all the same.
 */
export function retentionFromProperties(p: {
  immutabilityPolicyExpiresOn?: Date | undefined;
  immutabilityPolicyMode?: string | undefined;
  legalHold?: boolean | undefined;
}): Retention {
  const legalHold = p.legalHold === true;
  const until = p.immutabilityPolicyExpiresOn;
  if (!until || Number.isNaN(new Date(until).getTime()) || !p.immutabilityPolicyMode)
    return legalHold ? { legalHold } : NO_RETENTION;
  const mode = p.immutabilityPolicyMode.toLowerCase() === "locked" ? "compliance" : "governance";
  return { mode, retainUntil: new Date(until), legalHold };
}

/** The one-line refusal when a lock is asked for and the container cannot hold blob versions under a policy. */
export function noImmutabilityError(
  account: string,
  container: string,
  lock: ObjectLockSettings,
): UsageError {
  const what = lock.mode ? "no object lock" : "no legal hold";
  return new UsageError(
    `container ${container} in storage account ${account} has no version-level immutability`,
    `create it with az storage container-rm create --storage-account ${account} --name ${container} --enable-vlw ` +
      `(or migrate it with az storage container-rm migrate-vlw, or enable it for the account; blob versioning must be on), or ask for ${what}`,
  );
}
