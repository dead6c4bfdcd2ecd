import { MAX_TIMER_MS } from "../duration.ts";

/**
 * A work queue of object keys (`namespace/name`), as controllers use: a key is processed by at most one worker
 * at a time; adding a key already waiting keeps the earlier due time; a key added while it is being processed
 * runs again afterwards. At most `concurrency` keys are processed at once. A worker that throws makes its key
 * wait with per-key exponential backoff (`baseDelayMs` doubling up to `maxDelayMs`), reset by a success, so a
 * broken object never hot-loops and never blocks the others.
 */
export type Reconcile = (key: string, signal: AbortSignal) => Promise<number | undefined>;

export interface QueueOptions {
  concurrency: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Told about every failed attempt, with the delay before the next one. */
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly waiting = new Map<string, number>(); // key -> due time (ms)
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly options: Required<Omit<QueueOptions, "onError">> & Pick<QueueOptions, "onError">;
  private readonly reconcile: Reconcile;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(reconcile: Reconcile, options: QueueOptions) {
    this.reconcile = reconcile;
    this.options = { baseDelayMs: 1_000, maxDelayMs: 300_000, ...options };
  }

  /** Schedules `key` after `delayMs` (0: now). */
  add(key: string, delayMs = 0): void {
    const due = Date.now() + Math.max(0, delayMs);
    if (this.processing.has(key)) {
      if (delayMs <= 0) this.dirty.add(key);
      else this.waiting.set(key, Math.min(this.waiting.get(key) ?? Number.POSITIVE_INFINITY, due));
      return;
    }
    this.waiting.set(key, Math.min(this.waiting.get(key) ?? Number.POSITIVE_INFINITY, due));
    this.wake?.();
  }

  /** Keys currently being processed. */
  get active(): number {
    return this.processing.size;
  }

  /** Processes keys until `signal` aborts; resolves once every running worker has returned. */
  async run(signal: AbortSignal): Promise<void> {
    const running = new Set<Promise<void>>();
    const onAbort = () => this.wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const now = Date.now();
        let next = Number.POSITIVE_INFINITY;
        for (const [key, due] of this.waiting) {
          if (this.processing.size >= this.options.concurrency) break;
          if (this.processing.has(key)) continue;
          if (due > now) {
            next = Math.min(next, due);
            continue;
          }
          this.waiting.delete(key);
          const p = this.process(key, signal).finally(() => {
            running.delete(p);
            this.wake?.();
          });
          running.add(p);
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (Number.isFinite(next) && this.processing.size < this.options.concurrency) {
            // A monthly schedule's next run is more than a timer holds: wake at most every 24.8 days and look again.
            this.timer = setTimeout(resolve, Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now())));
          }
        });
        clearTimeout(this.timer);
        this.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      await Promise.allSettled([...running]);
    }
  }

  private async process(key: string, signal: AbortSignal): Promise<void> {
    this.processing.add(key);
    try {
      const after = await this.reconcile(key, signal);
      this.failures.delete(key);
      if (after !== undefined) this.add(key, after);
    } catch (err) {
      if (signal.aborted) return;
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (n - 1));
      this.options.onError?.(key, err, delay);
      this.dirty.delete(key);
      this.processing.delete(key);
      this.add(key, delay);
      return;
    } finally {
      this.processing.delete(key);
    }
    if (this.dirty.delete(key)) this.add(key);
  }
}
