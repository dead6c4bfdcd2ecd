/*
 * Where notifications go. A receiver is a URL, and the URL is a secret: incoming-webhook URLs (Slack, Teams,
 * Mattermost, healthchecks.io...) carry their token in the path or the query. So a receiver is shown only as
 * `notify #N (host)`, and every form the URL can take in text is handed to the one redactor (`secretForms`).
 *
 * The payload format is chosen per URL by an optional scheme prefix: `slack+https://...` posts Slack's
 * incoming-webhook payload, `json+https://...` (or a plain `https://...`) our JSON event. A plain URL takes the
 * default format (`--notify-format`, json unless told).
 */

export const NOTIFY_FORMATS = ["json", "slack"] as const;
export type NotifyFormat = (typeof NOTIFY_FORMATS)[number];

export const NOTIFY_EVENTS = ["success", "failure", "stale"] as const;
export type NotifyEventKind = (typeof NOTIFY_EVENTS)[number];

/** One receiver, ready to post to. Never print `url`. */
export interface NotifyTarget {
  /** The URL posted to, without the format prefix. Secret. */
  url: string;
  format: NotifyFormat;
  /** How logs, errors and metrics name it: `notify #1 (hooks.slack.com)`. Holds no secret. */
  label: string;
}

const PREFIX = /^(json|slack)\+(?=https?:\/\/)/i;

/**
 * Why a configured receiver cannot be used, or null when it can. Never echoes the value (it is a secret).
 */
export function notifyUrlProblem(raw: string): string | null {
  const bare = raw.trim().replace(PREFIX, "");
  let url: URL;
  try {
    url = new URL(bare);
  } catch {
    return "is not a URL (give http(s)://host/path, optionally prefixed by slack+ or json+)";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return "must be an http:// or https:// URL (optionally prefixed by slack+ or json+)";
  }
  if (!url.hostname) return "has no host";
  return null;
}

/**
 * The receivers of the configured URLs, numbered from 1 in the order given. `defaultFormat` applies to URLs
 * without a `slack+`/`json+` prefix. Throws for a URL `notifyUrlProblem` refuses (the configuration checks first).
 */
export function notifyTargets(urls: readonly string[], defaultFormat: NotifyFormat = "json"): NotifyTarget[] {
  return urls.map((raw, i) => {
    const problem = notifyUrlProblem(raw);
    if (problem !== null) throw new Error(`notify #${i + 1}: ${problem}`);
    const trimmed = raw.trim();
    const prefix = PREFIX.exec(trimmed)?.[1]?.toLowerCase() as NotifyFormat | undefined;
    const url = trimmed.replace(PREFIX, "");
    return { url, format: prefix ?? defaultFormat, label: `notify #${i + 1} (${new URL(url).host})` };
  });
}

/** A path (with its query) this long is registered whole. */
const MIN_PATH_FORM = 12;
/** A path segment or query value this long is registered alone: it is most likely the token. */
const MIN_TOKEN = 16;

/**
 * Every form a receiver's URL can take in text, for the redactor: as given, without its prefix, as the URL
 * parser writes it back, its path and query (the token), and each long path segment or query value alone.
 * The host stays readable: it is how a receiver is named.
 */
export function secretForms(raw: string): string[] {
  const forms = new Set<string>([raw, raw.trim(), raw.trim().replace(PREFIX, "")]);
  try {
    const url = new URL(raw.trim().replace(PREFIX, ""));
    forms.add(url.href);
    // Short forms (`/hook`, `services`) would shred ordinary text; tokens are long.
    for (const form of [`${url.pathname}${url.search}`, url.pathname, url.search]) {
      if (form.length >= MIN_PATH_FORM) forms.add(form);
    }
    for (const segment of url.pathname.split("/")) if (segment.length >= MIN_TOKEN) forms.add(segment);
    for (const value of url.searchParams.values()) if (value.length >= MIN_TOKEN) forms.add(value);
    if (url.password) forms.add(url.password);
  } catch {
    // Not a URL: the raw forms are registered.
  }
  return [...forms].filter((f) => f.length >= 4);
}
