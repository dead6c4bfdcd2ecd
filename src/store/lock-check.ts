/**
 * What a store's `prepare` needs to refuse a lock its bucket or container cannot give, in the store's words.
 * `ask` answers true (it can lock), false (it cannot) or undefined (the service would not say, usually for
 * want of a permission).
 */
export interface LockCheck {
  ask: () => Promise<boolean | undefined>;
  /** The error for a question that failed (unreachable service, missing bucket...). */
  failed: (err: unknown) => Error;
  /** The one-line refusal for a bucket or container that cannot lock. */
  cannotLock: () => Error;
  /** The one-line refusal for a service that would not say, naming the permission that lets it. */
  wouldNotTell: () => Error;
}

/**
 * Checks that the bucket or container can lock what the store is asked to lock, and throws one line otherwise:
 * writing "locked" backups where nothing locks them, or guessing that it does, would be a silent loss of the
 * protection asked for.
 */
export async function requireLockable(check: LockCheck): Promise<void> {
  let enabled: boolean | undefined;
  try {
    enabled = await check.ask();
  } catch (err) {
    throw check.failed(err);
  }
  if (enabled === false) throw check.cannotLock();
  if (enabled === undefined) throw check.wouldNotTell();
}
