import { Cron } from "croner";
import { MAX_TIMER_MS } from "../duration.ts";

/** A cron schedule (croner syntax: 5 fields, or 6 with seconds first), in a time zone or the process's. */
export class Schedule {
  readonly pattern: string;
  readonly timeZone: string | undefined;
  private readonly cron: Cron;

  /** Throws when the pattern or the time zone is invalid (the configuration has checked both). */
  constructor(pattern: string, timeZone?: string) {
    this.pattern = pattern;
    this.timeZone = timeZone;
    this.cron = new Cron(pattern, { paused: true, ...(timeZone ? { timezone: timeZone } : {}) });
  }

  /** The first scheduled time strictly after `after`, or null when the schedule has no more. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after);
  }

  /** Scheduled times in (from, to]: runs that came due while something else was going on. */
  countBetween(from: Date, to: Date, cap = 100_000): number {
    let n = 0;
    for (let t = this.next(from); t && t.getTime() <= to.getTime() && n < cap; t = this.next(t)) n++;
    return n;
  }

  /** The gap between the next two scheduled times after `now`: the schedule's interval, as seen from now. */
  intervalMs(now: Date): number | undefined {
    const a = this.next(now);
    const b = a ? this.next(a) : null;
    return a && b ? b.getTime() - a.getTime() : undefined;
  }
}

/**
 * Waits `ms` or until `signal` aborts. A wait longer than a timer holds (2^31-1 ms, about 24.8 days: a monthly or
 * yearly schedule) is made of several timers, so the run never starts early.
 */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + ms;
  for (let left = ms; left > 0 && !signal.aborted; left = until - Date.now()) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(left, MAX_TIMER_MS));
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
