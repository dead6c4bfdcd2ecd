/**
 * The pieces every status page shares (the daemon's, the operator's, `log --serve`'s): escaping, UTC stamps and
 * the self-contained document around a page's body (inline style only, no script, no external asset), so that
 * the pages look alike and none carries its own copy of the escaping.
 */

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** A time as RFC 3339 UTC to the second (`2026-11-30T11:02:19Z`); empty for none. */
export function utcStamp(d: Date | string | undefined): string {
  if (d === undefined) return "";
  const date = typeof d === "string" ? new Date(d) : d;
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The style both status pages use: summary line, states, tables with numeric and key columns. */
export const STATUS_PAGE_STYLE = `body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1f24; background: #fff; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
h3 { font-size: 1rem; margin: .8rem 0 .3rem; }
.summary { color: #444; margin-bottom: 1rem; }
.state-ready { color: #116329; font-weight: 600; }
.state-not-ready { color: #b3261e; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #e5e7eb; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key { font-family: ui-monospace, monospace; font-size: 12px; }
tr.failure td.result { color: #b3261e; font-weight: 600; }
tr.success td.result { color: #116329; }
td.error { color: #b3261e; max-width: 40rem; }
.reason { font-weight: normal; color: #555; }`;

/** A complete page: `title` is escaped here; `body` must already be escaped HTML. */
export function htmlDocument(title: string, body: string, extraStyle = ""): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
${STATUS_PAGE_STYLE}${extraStyle ? `\n${extraStyle}` : ""}
</style>
</head>
<body>
${body}
</body>
</html>
`;
}
