const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration as the daemon's settings take it: `30s`, `500ms`, `1m30s`, `25h`, `2d` (d = 24 h, w = 7 d).
 * Returns milliseconds, or null when the text is not a duration. A bare number is refused: it could mean
 * seconds or milliseconds, and a timeout must not guess.
 */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isFinite(total) ? Math.round(total) : null;
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
