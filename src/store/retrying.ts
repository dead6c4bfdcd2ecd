import { setTimeout as sleep } from "node:timers/promises";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** Upper bound of the first delay; each retry doubles it. */
  baseDelayMs: number;
  /** Cap on any single delay. */
  maxDelayMs: number;
}

/**
 * The delay before retry number `retry` (1 for the first retry): exponential backoff with full jitter, a uniform
 * draw from [0, min(maxDelayMs, baseDelayMs × 2^(retry-1))]. Full jitter spreads clients that were throttled
 * together so they do not come back together.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryOptions {
  policy: RetryPolicy;
  /** Decides whether a failure may be retried; a `false` rethrows it at once. */
  isTransient: (err: unknown) => boolean;
  /** Stops retrying (and waiting) when it fires; the operation's last error is thrown. */
  signal?: AbortSignal;
  /** Told about each retry before the wait, for logs and tests. */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
}

/**
 * Runs `operation` until it resolves, a failure is not transient, the attempts run out or the signal fires, and
 * then returns its value or throws its last error unchanged. `operation` must be safe to run more than once.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const { policy, isTransient, signal } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || signal?.aborted || !isTransient(err)) throw err;
      const delay = backoffDelay(attempt, policy);
      options.onRetry?.(err, attempt, delay);
      try {
        await sleep(delay, undefined, signal ? { signal } : undefined);
      } catch {
        throw err;
      }
    }
  }
}
