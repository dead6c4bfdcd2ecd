import { UsageError } from "../errors.ts";
import { MAX_OBJECT_LOCK_DAYS, OBJECT_LOCK_MODES, type ObjectLockSettings } from "./s3-settings.ts";

/**
 * A store's lock settings checked, in the destination-neutral flags' words (the S3 store keeps its own check,
 * which names the S3 flags): a mode comes with its days, days with a mode; undefined when neither a mode nor a
 * legal hold was asked for. Throws `UsageError`.
 */
export function checkObjectLock(lock: ObjectLockSettings | undefined): ObjectLockSettings | undefined {
  if (!lock || (lock.mode === undefined && !lock.legalHold)) {
    if (lock?.days !== undefined)
      throw new UsageError("--object-lock-days needs --object-lock", "add --object-lock governance");
    return undefined;
  }
  if (lock.mode !== undefined && !OBJECT_LOCK_MODES.includes(lock.mode))
    throw new UsageError(`unknown object lock mode ${lock.mode}`, "use governance or compliance");
  if (lock.mode !== undefined && lock.days === undefined) {
    throw new UsageError(
      `--object-lock ${lock.mode} needs --object-lock-days`,
      "pass --object-lock-days N, or --keep-within to lock each backup as long as it is kept",
    );
  }
  if (lock.days !== undefined && lock.mode === undefined)
    throw new UsageError("--object-lock-days needs --object-lock", "add --object-lock governance");
  if (
    lock.days !== undefined &&
    (!Number.isInteger(lock.days) || lock.days < 1 || lock.days > MAX_OBJECT_LOCK_DAYS)
  ) {
    throw new UsageError(
      `--object-lock-days ${lock.days} is out of range`,
      `use 1 to ${MAX_OBJECT_LOCK_DAYS} days`,
    );
  }
  return {
    ...(lock.mode !== undefined ? { mode: lock.mode, days: lock.days! } : {}),
    ...(lock.legalHold ? { legalHold: true } : {}),
  };
}
