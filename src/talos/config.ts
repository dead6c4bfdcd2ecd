import { X509Certificate } from "node:crypto";
import { access, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { Hinted, UsageError } from "../errors.ts";
import { yaml } from "../yaml.ts";

/** Where Talos mounts a Talos ServiceAccount's secret inside a pod (its talosconfig is the file `config`). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/talos.dev";

/** apid's port, used when an endpoint names none. */
export const APID_PORT = 50000;

/** One talosconfig context, ready to connect with: PEM material decoded, never printed. */
export interface TalosContext {
  /** The context's name (talos-backup uses it as the cluster name when CLUSTER_NAME is unset). */
  name: string;
  /** The file it was read from. */
  path: string;
  endpoints: string[];
  nodes: string[];
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/**
 * The talosconfig files to try, in talosctl's order: an explicit path (flag) alone when given; otherwise
 * `$TALOSCONFIG`, then `$TALOS_HOME/config` (absolute only) or `~/.talos/config`, then the ServiceAccount mount.
 */
export function talosconfigCandidates(
  explicit: string | undefined,
  env: Record<string, string | undefined> = process.env,
  home: string = homedir(),
  serviceAccountDir: string = SERVICE_ACCOUNT_DIR,
): string[] {
  if (explicit) return [explicit];
  const out: string[] = [];
  if (env.TALOSCONFIG) out.push(env.TALOSCONFIG);
  const talosHome = env.TALOS_HOME && isAbsolute(env.TALOS_HOME) ? env.TALOS_HOME : join(home, ".talos");
  out.push(join(talosHome, "config"), join(serviceAccountDir, "config"));
  return out;
}

/** The first candidate that exists, or undefined. */
export async function findTalosconfig(candidates: string[]): Promise<string | undefined> {
  for (const path of candidates) {
    try {
      await access(path);
      return path;
    } catch {}
  }
  return undefined;
}

/**
 * Reads a talosconfig (YAML: `context`, `contexts.<name>.{endpoints, nodes, ca, crt, key}` with base64 PEM) and
 * returns the named context, or the file's current one. Throws `Hinted` for a missing file or context and for
 * missing or unreadable certificates; messages never include key material.
 */
export async function loadTalosContext(path: string, contextName?: string): Promise<TalosContext> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Hinted(
      `cannot read talosconfig ${path}: ${code}`,
      "pass --talosconfig FILE or set TALOSCONFIG",
    );
  }
  return parseTalosconfig(text, path, contextName);
}

/** Parses talosconfig text; see `loadTalosContext`. */
export function parseTalosconfig(text: string, path: string, contextName?: string): TalosContext {
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (err) {
    throw new Hinted(`talosconfig ${path} is not valid YAML`, "check the file", { cause: err });
  }
  const root = (doc ?? {}) as { context?: unknown; contexts?: Record<string, unknown> };
  const contexts = root.contexts && typeof root.contexts === "object" ? root.contexts : {};
  const name = contextName || (typeof root.context === "string" ? root.context : "");
  if (!name) throw new Hinted(`talosconfig ${path} names no current context`, "pass --context NAME");
  const ctx = contexts[name] as Record<string, unknown> | undefined;
  if (!ctx || typeof ctx !== "object") {
    const known = Object.keys(contexts).join(", ") || "none";
    throw new Hinted(
      `talosconfig ${path} has no context ${JSON.stringify(name)}`,
      `known contexts: ${known}`,
    );
  }
  const list = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x.trim() !== "") : [];
  const pem = (field: "ca" | "crt" | "key"): Buffer => {
    const v = ctx[field];
    if (typeof v !== "string" || !v.trim()) {
      throw new Hinted(
        `talosconfig context ${name} has no ${field}`,
        "use a talosconfig with client certificates (talosctl gen config, talosctl config new)",
      );
    }
    const decoded = Buffer.from(v.trim(), "base64");
    if (!decoded.toString("latin1").includes("-----BEGIN ")) {
      throw new Hinted(`talosconfig context ${name}: ${field} is not base64-encoded PEM`, "check the file");
    }
    return decoded;
  };
  const endpoints = list(ctx.endpoints);
  if (endpoints.length === 0 && typeof ctx.target === "string" && ctx.target) endpoints.push(ctx.target);
  return {
    name,
    path,
    endpoints,
    nodes: list(ctx.nodes),
    ca: pem("ca"),
    cert: pem("crt"),
    key: pem("key"),
  };
}

/** What the client certificate says about itself: the roles (Subject O=) and the validity window. */
export interface ClientCertificateInfo {
  roles: string[];
  notAfter: Date;
  notBefore: Date;
}

/** Reads the roles and validity of a PEM client certificate. */
export function describeClientCertificate(certPem: Buffer): ClientCertificateInfo {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new Hinted("the talosconfig client certificate cannot be parsed", "check the talosconfig", {
      cause: err,
    });
  }
  const roles: string[] = [];
  for (const line of cert.subject.split("\n")) {
    const m = /^O=(.*)$/.exec(line.trim());
    if (m?.[1]) roles.push(...m[1].split("+").map((s) => s.trim()));
  }
  return { roles, notAfter: new Date(cert.validTo), notBefore: new Date(cert.validFrom) };
}

/**
 * Refuses a client certificate that is expired or not yet valid, before any connection: apid would only drop
 * the TLS handshake, which reaches the user as an opaque connection error.
 */
export function checkClientCertificate(info: ClientCertificateInfo, now: Date = new Date()): void {
  if (info.notAfter.getTime() < now.getTime()) {
    throw new Hinted(
      `the talosconfig client certificate expired on ${info.notAfter.toISOString()}`,
      "get a fresh talosconfig (talosctl config new; a Talos ServiceAccount's secret is renewed by Talos)",
    );
  }
  if (info.notBefore.getTime() > now.getTime() + 5 * 60_000) {
    throw new Hinted(
      `the talosconfig client certificate is not valid before ${info.notBefore.toISOString()}`,
      "check this machine's clock",
    );
  }
}

/**
 * A Talos endpoint as a gRPC target: `host` gets apid's port 50000, `host:port` and `[v6]:port` stay,
 * a bare IPv6 address is bracketed. Throws `UsageError` for an empty endpoint.
 */
export function endpointTarget(endpoint: string): string {
  const e = endpoint
    .trim()
    .replace(/^(https?|grpc):\/\//, "")
    .replace(/\/+$/, "");
  if (!e) throw new UsageError("empty Talos endpoint", "pass -e host[:port]");
  if (e.startsWith("[")) return /\]:\d+$/.test(e) ? e : `${e}:${APID_PORT}`;
  const colons = (e.match(/:/g) ?? []).length;
  if (colons > 1) return `[${e}]:${APID_PORT}`;
  if (colons === 1) return e;
  return `${e}:${APID_PORT}`;
}
