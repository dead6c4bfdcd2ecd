import { parseSpan } from "../duration.ts";
import { parseRfc3339 } from "./names.ts";

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
