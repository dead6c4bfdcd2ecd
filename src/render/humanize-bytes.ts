/**
 * Sizes as etcdctl prints them in tables (go-humanize `Bytes`): SI units (1 kB = 1000 B), one decimal
 * below 10 ("2.1 MB"), none above ("20 kB"), plain "N B" under 10 bytes.
 */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const tenths = Math.floor((n / 1000 ** e) * 10 + 0.5);
  const suffix = sizes[e] ?? "EB";
  if (tenths < 100) return `${(tenths / 10).toFixed(1)} ${suffix}`;
  // Go's %.0f rounds a tie to even (20.5 -> "20"); toFixed would round it up.
  const whole = Math.floor(tenths / 10);
  const rest = tenths % 10;
  const rounded = rest > 5 || (rest === 5 && whole % 2 === 1) ? whole + 1 : whole;
  return `${rounded} ${suffix}`;
}
