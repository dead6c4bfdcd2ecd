import { escapeHtml } from "../render/html.ts";

/*
 * The one redactor. Every path by which text leaves the process goes through a `Redactor`: the CLI's stderr
 * (error lines, warnings, commander's usage errors), pino log lines, the daemon's and the operator's status
 * pages, /readyz and /metrics, the operator's Events and status conditions.
 *
 * It removes two kinds of secret:
 * - values it was told about (`add`): passwords, passphrases, identity lines and private keys read from files or
 *   Secrets, the values of the secret environment variables (`addFromEnv`) and of secret flags (`addFromArgv`);
 *   each also in the forms it takes inside a JSON string and inside HTML;
 * - anything with a secret's shape, even if nobody registered it: age secret keys and plugin identities (also
 *   truncated ones: not even 4 characters of one are echoed), PEM private keys (also base64-encoded, as in a
 *   talosconfig or a kubeconfig), the password of a URL's userinfo
 *   (`http://user:PASSWORD@host`), bearer and basic credentials, JWTs (Kubernetes tokens), AWS session tokens,
 *   Azure Storage account keys in connection strings (`AccountKey=...`), SAS signatures (`sig=...`), Google upload
 *   session ids and OAuth tokens, and assignments of the known secret variables (`AWS_SECRET_ACCESS_KEY=...`,
 *   `AZURE_STORAGE_KEY=...`).
 */

/** What stands in a log line, a page or an error in place of a secret. */
export const REDACTED = "[REDACTED]";

/**
 * Environment variables whose values are secrets wherever they show up: AWS credentials (talos-backup's and the
 * SDK's), etcdctl's password. `ETCDCTL_USER` holds one after its ':' (see `addFromEnv`). The age variables
 * talos-backup reads (`AGE_X25519_PUBLIC_KEY`) and ours (`ETCD_BACKUP_RECIPIENTS`) hold public keys only.
 */
export const SECRET_ENV_VARS = [
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "ETCDCTL_PASSWORD",
  // Azure Storage's (az CLI and SDK names) and a service principal's secret (DefaultAzureCredential reads it).
  "AZURE_STORAGE_KEY",
  "AZURE_STORAGE_SAS_TOKEN",
  "AZURE_STORAGE_CONNECTION_STRING",
  "AZURE_CLIENT_SECRET",
  // Notification receivers' URLs (--notify): webhook URLs carry their token.
  "ETCD_BACKUP_NOTIFY",
] as const;

/**
 * Flags whose value is a secret (`--password x`, `--password=x`, a webhook URL given to `--notify`); `--user`
 * holds one after its ':'.
 */
const SECRET_FLAGS = ["--password", "--notify"] as const;

// Secrets that have a recognisable shape, removed even when nobody registered them. Each replaces the whole match
// with `$<keep>` (what may stay, e.g. a URL's user name) followed by REDACTED.
const SHAPED_SECRETS: RegExp[] = [
  // age X25519 identities (Bech32, either case) and plugin identities, whole or truncated after the "1".
  /AGE-SECRET-KEY-1[0-9A-Za-z]+/gi,
  /AGE-PLUGIN-[0-9A-Za-z]+-1[0-9A-Za-z]+/gi,
  // PEM private keys (PKCS#8, RSA, EC, OpenSSH, encrypted), up to the END line, a JSON string's end or the text's.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|(?=["'<])|$)/g,
  // The password of a URL's userinfo: scheme://user:PASSWORD@host, and gRPC's `dns:user:PASSWORD@host`.
  /(?<keep>\b[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#@]+(?=@)/gi,
  /(?<keep>\bdns:(?:\/\/[^/\s]*\/)?[^\s/?#@:]*:)[^\s/?#@]+(?=@)/gi,
  // HTTP credentials (a bearer token is long: "Bearer authentication" stays readable).
  /(?<keep>\bBearer\s+)[A-Za-z0-9._~+/-]{16,}=*/g,
  /(?<keep>\bAuthorization:\s*Basic\s+)[A-Za-z0-9+/]+=*/gi,
  // JSON Web Tokens (Kubernetes ServiceAccount tokens).
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  // AWS STS session tokens (they start with the base64 of a fixed protobuf/JSON preamble).
  /\b(?:FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]+/g,
  // Google: a resumable upload session's id (whoever holds the session URL can write to the upload), OAuth 2
  // access tokens and refresh tokens.
  /(?<keep>[?&]upload_id=)[A-Za-z0-9_-]+/g,
  /\bya29\.[A-Za-z0-9._-]{16,}/g,
  /\b1\/\/0[A-Za-z0-9_-]{20,}/g,
  // `AWS_SECRET_ACCESS_KEY=...`, `aws_session_token = ...` (env dumps, credentials files), `ETCDCTL_PASSWORD=...`.
  /(?<keep>\b(?:AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|ETCDCTL_PASSWORD)\s*[=:]\s*["']?)[^\s"',;]+/gi,
  /(?<keep>\b(?:AZURE_STORAGE_KEY|AZURE_STORAGE_SAS_TOKEN|AZURE_CLIENT_SECRET)\s*[=:]\s*["']?)[^\s"',;]+/gi,
  // Azure Storage connection strings' key (`AccountKey=...;`) and a SAS token's signature (`sig=...`).
  /(?<keep>\bAccountKey=)[^\s"';]+/gi,
  /(?<keep>[?&]sig=)[^\s"'&#]+/gi,
  /(?<keep>^sig=|\ssig=)[A-Za-z0-9%+/=]+/gi,
];

/** base64 of "-----BEGIN": a PEM file encoded once more, as talosconfig and kubeconfig hold keys. */
const BASE64_PEM = /LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}/g;

/** Registered values shorter than this are ignored: replacing them would shred ordinary text. */
const MIN_NEEDLE = 4;
/** A line of a multi-line secret (a PEM body) is registered on its own when it is at least this long. */
const MIN_LINE_NEEDLE = 16;

/**
 * Removes secrets from text that leaves the process. See the top of this module for what it knows; `redact` is
 * cheap enough for every log line (a few substring searches and regular expressions).
 */
export class Redactor {
  private readonly needles = new Set<string>();
  private sorted: string[] = [];

  /** Registers secret values (whole, trimmed, and each long line of a multi-line one). */
  add(...values: (string | undefined)[]): this {
    for (const v of values) {
      if (v === undefined) continue;
      const forms = [v, v.trim()];
      if (v.includes("\n")) {
        for (const line of v.split(/\r?\n/)) {
          const t = line.trim();
          if (t.length >= MIN_LINE_NEEDLE && !t.startsWith("-----")) forms.push(t);
        }
      }
      for (const form of forms) {
        for (const variant of [form, JSON.stringify(form).slice(1, -1), escapeHtml(form)]) {
          if (variant.length >= MIN_NEEDLE) this.needles.add(variant);
        }
      }
    }
    this.sorted = [...this.needles].sort((a, b) => b.length - a.length);
    return this;
  }

  /**
   * Registers the secrets of an environment: the values of `SECRET_ENV_VARS`, the password in `ETCDCTL_USER`
   * (`name:password`), and the password of any URL with userinfo in any variable (`ETCDCTL_ENDPOINTS`, proxies).
   */
  addFromEnv(env: Record<string, string | undefined>): this {
    for (const name of SECRET_ENV_VARS) this.add(env[name], ...(env[name]?.split(",") ?? []));
    const user = env.ETCDCTL_USER;
    if (user?.includes(":")) this.add(user.slice(user.indexOf(":") + 1));
    for (const value of Object.values(env)) if (value) this.addUrlPasswords(value);
    return this;
  }

  /**
   * Registers the secrets of a command line: the values of secret flags (`--password`), the password in
   * `--user name:password`, and the password of any URL with userinfo (`--endpoints http://u:p@host`).
   */
  addFromArgv(argv: readonly string[]): this {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      this.addUrlPasswords(arg);
      const eq = arg.indexOf("=");
      const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
      const value = arg.startsWith("--") && eq > 0 ? arg.slice(eq + 1) : argv[i + 1];
      if (value === undefined) continue;
      if ((SECRET_FLAGS as readonly string[]).includes(flag)) this.add(value, ...value.split(","));
      if (flag === "--user" && value.includes(":")) this.add(value.slice(value.indexOf(":") + 1));
    }
    return this;
  }

  /** Registers the password of every `scheme://user:password@` in `text`. */
  private addUrlPasswords(text: string): void {
    for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:([^\s/?#@]+)@/gi)) {
      const password = m[1]!;
      this.add(password);
      try {
        this.add(decodeURIComponent(password));
      } catch {
        // Not percent-encoded: the raw form is registered.
      }
    }
  }

  redact(text: string): string {
    let out = text;
    for (const needle of this.sorted) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    for (const re of SHAPED_SECRETS) {
      out = out.replace(re, (...args) => {
        const groups = args.at(-1) as Record<string, string | undefined> | undefined;
        return `${typeof groups === "object" ? (groups?.keep ?? "") : ""}${REDACTED}`;
      });
    }
    // A PEM file in base64 (talosconfig's `key:`, kubeconfig's `client-key-data:`): removed when it is a key.
    out = out.replace(BASE64_PEM, (blob) =>
      Buffer.from(blob, "base64").toString("latin1").includes("PRIVATE KEY") ? REDACTED : blob,
    );
    return out;
  }
}

/**
 * This process's redactor, for the front ends: the CLI registers the environment and its command line in it and
 * passes its stderr through it; the daemon and the operator hand it to their loggers, pages and Events, and add
 * the secrets they read (passphrases, identities, Secrets' values) as they read them.
 */
export const processRedactor = new Redactor();
