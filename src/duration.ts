import { UsageError } from "./errors.ts";

/*
 * The one duration parser: every duration a user gives (CLI flags, their environment variables, the daemon's
 * YAML file, the operator's flags) is read here, so `save --dial-timeout 5` and `daemon --dial-timeout 5` mean
 * the same thing.
 *
 * Grammar: one or more `<number><unit>` with units ms, s, m, h, d (24 h) and w (7 d): `30s`, `500ms`, `1m30s`,
 * `1.5h`, `2d`. A bare number is seconds (`5` is 5 s, `0` is zero), as a YAML number already was in the daemon's
 * file and as Kubernetes' `...Seconds` fields are. etcdctl (Go's time.ParseDuration) refuses a bare number other
 * than 0; we accept it because seconds is the only reading anyone means for a timeout, and a unit-less value in
 * an environment variable should not fail a daemon at 3 a.m.
 *
 * Anything that becomes a timer is bounded: Node's timers hold 2^31-1 ms (about 24.8 days) and silently turn a
 * longer delay into 1 ms (with a TimeoutOverflowWarning on stderr), so a longer value is refused at parse time.
 */

/** The longest delay a Node.js timer takes: 2^31-1 ms, 24 days 20 h 31 min. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const NUMBER = String.raw`\d+(?:\.\d+)?`;
const WITH_UNITS = new RegExp(`^(?:${NUMBER}(?:ms|s|m|h|d|w))+$`);
const PART = new RegExp(`(${NUMBER})(ms|s|m|h|d|w)`, "g");
const BARE = new RegExp(`^${NUMBER}$`);

/**
 * Parses a duration (see the grammar above) into whole milliseconds; a number is taken as seconds. Returns null
 * when the text is not a duration. No bound is applied: see `durationSetting` for what users give.
 */
export function parseDuration(value: string | number): number | null {
  if (typeof value === "number")
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  const t = value.trim();
  if (BARE.test(t)) return Math.round(Number(t) * 1000);
  if (!WITH_UNITS.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(Math.round(total)) ? Math.round(total) : null;
}

export interface DurationBounds {
  /** Refuse 0 (a timeout of zero never connects). Default true. */
  positive?: boolean;
  /** Longest accepted, in ms. Default `MAX_TIMER_MS`: the value becomes a timer. */
  maxMs?: number;
}

interface Problem {
  what: string;
  hint: string;
}

function problemOf(value: string | number, bounds: DurationBounds): Problem | null {
  const ms = parseDuration(value);
  if (ms === null) {
    return { what: "is not a duration", hint: "use e.g. 30s, 500ms, 1m30s; a bare number is seconds" };
  }
  if ((bounds.positive ?? true) && ms <= 0) return { what: "must be longer than zero", hint: "use e.g. 5s" };
  const max = bounds.maxMs ?? MAX_TIMER_MS;
  if (ms > max) {
    return {
      what: `longer than the longest supported duration (${formatDuration(max)})`,
      hint: "use a shorter duration",
    };
  }
  return null;
}

/**
 * Why `value` cannot be used as a duration within `bounds`, as the tail of a one-line error (`is not a duration
 * (use e.g. 30s, 500ms, 1m30s; ...)`), or null when it can.
 */
export function durationProblem(value: string | number, bounds: DurationBounds = {}): string | null {
  const p = problemOf(value, bounds);
  return p ? `${p.what} (${p.hint})` : null;
}

/**
 * Reads the duration a user gave for `flag`, in ms. Throws a `UsageError` whose one line names the flag and the
 * value: `--dial-timeout 1000h: longer than the longest supported duration (24d20h) (use a shorter duration)`.
 */
export function durationSetting(flag: string, value: string | number, bounds: DurationBounds = {}): number {
  const p = problemOf(value, bounds);
  if (p) {
    const shown =
      typeof value === "number" || /^[\w.]{1,40}$/.test(value) ? String(value) : JSON.stringify(value);
    throw new UsageError(`${flag} ${shown}: ${p.what}`, p.hint);
  }
  return parseDuration(value)!;
}

/** A duration as people read it, the largest two units: `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.slice(0, 2).join("");
}

const WHOLE_SPAN = /^(?:\d+[smhdw])+$/;

/**
 * A span of time for retention and listing filters: whole numbers with units only (`7d`, `36h`, `90m`, `2w`,
 * `1d12h`, `30s`), the same grammar and units as `parseDuration`, without bound. A bare number is refused:
 * `7` could mean seconds or days, and a retention or filter flag must not guess. Returns null otherwise.
 */
export function parseSpan(text: string): number | null {
  const t = text.trim();
  return WHOLE_SPAN.test(t) ? parseDuration(t) : null;
}
