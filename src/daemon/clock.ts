import { sleep } from "./schedule.ts";

/**
 * The daemon's time: what it reads as now and how it waits. The system's by default; a test gives one it can
 * move forward (test/fixtures/jump-clock.ts) so that a schedule missed for hours is seen in a second.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Waits `ms` of this clock's time, or until `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep };
