/** What stands in a log line, a page or an error in place of a secret. */
export const REDACTED = "[REDACTED]";

/** Environment variables whose values are secrets wherever they show up. */
export const SECRET_ENV_VARS = [
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "ETCDCTL_PASSWORD",
  "ETCD_BACKUP_PASSPHRASE",
] as const;

// Secrets that have a recognisable shape are removed even when nobody registered them.
const SHAPED_SECRETS = [
  /AGE-SECRET-KEY-1[0-9A-Z]+/g,
  /AGE-PLUGIN-[0-9A-Z-]+-1[0-9A-Z]+/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/**
 * Removes secrets from text that leaves the process (log lines, the status page, error lines): every value
 * registered with `add` (also in its JSON-escaped form, as it appears inside a JSON log line) and anything shaped
 * like an age secret key or a PEM private key. Values shorter than 4 characters are not registered: replacing
 * them would shred ordinary text and hide nothing worth hiding.
 */
export class Redactor {
  private readonly needles = new Set<string>();
  private sorted: string[] = [];

  add(...values: (string | undefined)[]): this {
    for (const v of values) {
      if (v === undefined) continue;
      for (const form of [v, v.trim(), JSON.stringify(v).slice(1, -1)]) {
        if (form.length >= 4) this.needles.add(form);
      }
    }
    this.sorted = [...this.needles].sort((a, b) => b.length - a.length);
    return this;
  }

  /** Registers the values of `SECRET_ENV_VARS` found in `env`. */
  addFromEnv(env: Record<string, string | undefined>): this {
    for (const name of SECRET_ENV_VARS) this.add(env[name]);
    // `--user name:password` through the environment.
    const user = env.ETCDCTL_USER;
    if (user?.includes(":")) this.add(user.slice(user.indexOf(":") + 1));
    return this;
  }

  redact(text: string): string {
    let out = text;
    for (const needle of this.sorted) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    for (const re of SHAPED_SECRETS) out = out.replace(re, REDACTED);
    return out;
  }
}
