import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

/**
 * Google credentials given explicitly: the contents of a credentials file (GOOGLE_APPLICATION_CREDENTIALS, or a
 * Secret's key the operator read), checked here so that a broken one fails with one line that names where it
 * came from and what is wrong, never with its contents. (JSON.parse's own message quotes the text around the
 * error, and the auth library's would come only at the first request.)
 *
 * Without explicit credentials the store uses Application Default Credentials as the SDK finds them: gcloud's
 * application-default login, workload identity or a VM's metadata server.
 */
export interface GcsCredentials {
  /** The parsed credentials file, handed to the auth library as is. Secret: never printed. */
  json: Record<string, unknown>;
  /** Where it came from, for messages: a path or `Secret ns/name key`. Never its contents. */
  label: string;
  /** The values in it that are secrets (a private key, a refresh token), for the redactor. */
  secrets: string[];
}

/** Credential file types the auth library accepts. */
const KNOWN_TYPES = new Set([
  "service_account",
  "authorized_user",
  "external_account",
  "external_account_authorized_user",
  "impersonated_service_account",
]);

const HINT =
  "give a service-account key file (JSON, from `gcloud iam service-accounts keys create`) or a workload identity configuration; see docs/gcs.md";

/** Parses and checks the contents of a credentials file; throws `UsageError` naming `label`, never the contents. */
export function parseGcsCredentials(text: string, label: string): GcsCredentials {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`cannot use the Google credentials in ${label}: not JSON`, HINT);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new UsageError(`cannot use the Google credentials in ${label}: not a JSON object`, HINT);
  const o = json as Record<string, unknown>;
  const type = o.type;
  if (typeof type !== "string" || !KNOWN_TYPES.has(type)) {
    throw new UsageError(
      `cannot use the Google credentials in ${label}: ${typeof type === "string" ? `unknown type ${JSON.stringify(type.slice(0, 40))}` : "no type field"}`,
      HINT,
    );
  }
  const secrets: string[] = [];
  const need = (field: string) => {
    if (typeof o[field] !== "string" || !o[field])
      throw new UsageError(`cannot use the Google credentials in ${label}: ${type} without ${field}`, HINT);
    return o[field] as string;
  };
  if (type === "service_account") {
    need("client_email");
    const key = need("private_key");
    secrets.push(key);
    try {
      createPrivateKey(key);
    } catch {
      throw new UsageError(
        `cannot use the Google credentials in ${label}: its private_key is not a PEM private key`,
        HINT,
      );
    }
  } else if (type === "authorized_user") {
    need("client_id");
    secrets.push(need("client_secret"), need("refresh_token"));
  } else if (type === "external_account") {
    need("audience");
    if (typeof o.credential_source !== "object" && typeof o.subject_token_supplier !== "object")
      throw new UsageError(
        `cannot use the Google credentials in ${label}: external_account without credential_source`,
        HINT,
      );
  }
  return { json: o, label, secrets };
}

/** Reads and checks a credentials file. */
export function readGcsCredentialsFile(path: string, label = path): GcsCredentials {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new UsageError(
      `cannot read the Google credentials file ${label} (${code})`,
      "check GOOGLE_APPLICATION_CREDENTIALS",
    );
  }
  return parseGcsCredentials(text, label);
}

/** The credentials GOOGLE_APPLICATION_CREDENTIALS names, or undefined when it is not set. */
export function gcsCredentialsFromEnv(
  env: Record<string, string | undefined> = process.env,
): GcsCredentials | undefined {
  const path = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!path) return undefined;
  return readGcsCredentialsFile(path, `${path} (GOOGLE_APPLICATION_CREDENTIALS)`);
}
