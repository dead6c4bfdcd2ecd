import { parseRfc3339 } from "./names.ts";

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a span of time written with units: `7d`, `36h`, `90m`, `2w`, `1d12h`, `30s` (s, m, h, d = 24 h, w = 7 d).
 * Returns milliseconds, or null when the text is not such a span. A bare number is refused: `7` could mean
 * seconds or days, and a retention or filter flag must not guess.
 */
export function parseSpan(text: string): number | null {
  const t = text.trim();
  if (!/^(\d+[smhdw])+$/.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(total) ? total : null;
}

/**
 * Parses what a user gives for `--since`, `--until` or `--before`: an RFC 3339 time (`2026-11-23T12:00:00Z`,
 * `2026-11-23T14:00:00+02:00`), a UTC date (`2026-11-23` is its midnight UTC), or a span meaning that long before
 * `now` (`7d` is seven days ago). Returns null when the text is none of these.
 */
export function parseTimeBound(text: string, now: Date): Date | null {
  const t = text.trim();
  const date = /^(\d{4}-\d{2}-\d{2})$/.exec(t);
  if (date) return parseRfc3339(`${date[1]}T00:00:00Z`);
  const time = parseRfc3339(t);
  if (time) return time;
  const span = parseSpan(t);
  return span === null ? null : new Date(now.getTime() - span);
}
