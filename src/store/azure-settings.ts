import { readFileSync } from "node:fs";
import { Hinted, UsageError } from "../errors.ts";
import { checkObjectLock } from "./object-lock-settings.ts";
import type { ObjectLockSettings } from "./s3-settings.ts";

const MiB = 1024 * 1024;

/**
 * Azure's limits on block blobs (API version 2019-12-12 and later): a block is at most 4000 MiB, a blob has at
 * most 50,000 committed blocks. Our own floor of 1 MiB keeps the request count sane.
 */
export const MIN_BLOCK_SIZE = 1 * MiB;
export const MAX_BLOCK_SIZE = 4000 * MiB;
export const MAX_BLOCKS = 50_000;

// 8 MiB x (4 + 1) buffers = 40 MiB of block memory, the same bound as the S3 store's parts.
export const DEFAULT_BLOCK_SIZE = 4 * MiB;
export const DEFAULT_CONCURRENCY = 2;

/**
 * How to reach a storage account's Blob service, as flags, the environment or a config file give it. Every field
 * is optional; `resolveAzureSettings` checks them. Secret values (an account key, a SAS token, a connection
 * string) are not part of it: they come as `AzureSecrets`, and the files named here are read when the store is
 * opened.
 */
export interface AzureSettings {
  /** The storage account's name; absent: the connection string's or the endpoint's (Azurite's path style). */
  account?: string;
  /**
   * The Blob service's URL, `https://ACCOUNT.blob.core.usgovcloudapi.net` for a sovereign cloud, or an emulator's
   * `http://127.0.0.1:10000/devstoreaccount1`; absent: `https://ACCOUNT.blob.core.windows.net`.
   */
  endpoint?: string;
  /** A file holding the account's shared key. */
  accountKeyFile?: string;
  /** A file holding a SAS token (`sv=...&sig=...`, with or without the leading `?`). */
  sasTokenFile?: string;
  /** Bytes per staged block; memory is about `blockSize × (concurrency + 1)`. */
  blockSize?: number;
  /** Blocks staged at once. */
  concurrency?: number;
  /** Attempts per request for transient failures (5xx, throttling, network), including the first. */
  maxAttempts?: number;
  /** First retry delay in milliseconds; later ones double, with full jitter. */
  retryBaseDelayMs?: number;
  /**
   * Lock backup data when writing it, as version-level immutability (azure-immutability.ts): `governance` is an
   * unlocked policy, `compliance` a locked one, `days` from the write; `legalHold` a legal hold. Unset: nothing
   * is locked by us.
   */
  objectLock?: ObjectLockSettings;
}

/** Credentials given as values: read from the environment, or from a Secret by the operator. Never printed. */
export interface AzureSecrets {
  accountKey?: string;
  sasToken?: string;
  /** The standard `AZURE_STORAGE_CONNECTION_STRING` (`AccountName=...;AccountKey=...` or with a SAS). */
  connectionString?: string;
}

/** How a store authenticates: the account key, a SAS token, or an Entra ID token credential. */
export type AzureAuth =
  | { kind: "shared key"; accountKey: string }
  | { kind: "sas"; sasToken: string }
  | { kind: "default credential" };

/** Everything a store needs, checked: where, how to authenticate, and how to upload. */
export interface ResolvedAzureSettings {
  account: string;
  /** Without a trailing slash; for messages too (it never holds a secret). */
  endpoint: string;
  auth: AzureAuth;
  blockSize: number;
  concurrency: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  /** Checked: a mode comes with its days; undefined when neither a mode nor a legal hold was asked for. */
  objectLock: ObjectLockSettings | undefined;
  /** The secret values in use, for the caller's redactor. */
  secrets: string[];
}

type Env = Record<string, string | undefined>;

/** Environment variables of our own for the settings that have no Azure standard name. */
export const AZURE_ENV = {
  endpoint: "ETCD_BACKUP_AZURE_ENDPOINT",
  accountKeyFile: "ETCD_BACKUP_AZURE_ACCOUNT_KEY_FILE",
  sasTokenFile: "ETCD_BACKUP_AZURE_SAS_TOKEN_FILE",
  blockSizeMiB: "ETCD_BACKUP_AZURE_BLOCK_SIZE",
  concurrency: "ETCD_BACKUP_AZURE_CONCURRENCY",
} as const;

/**
 * Azure settings from the environment: the account from `AZURE_STORAGE_ACCOUNT` (the name the az CLI reads), the
 * rest from the `ETCD_BACKUP_AZURE_*` names in `AZURE_ENV`. Throws `UsageError` for a value that does not parse.
 */
export function azureSettingsFromEnv(env: Env): AzureSettings {
  const s: AzureSettings = {};
  const account = nonEmpty(env.AZURE_STORAGE_ACCOUNT);
  if (account) s.account = account;
  const endpoint = nonEmpty(env[AZURE_ENV.endpoint]);
  if (endpoint) s.endpoint = endpoint;
  const keyFile = nonEmpty(env[AZURE_ENV.accountKeyFile]);
  if (keyFile) s.accountKeyFile = keyFile;
  const sasFile = nonEmpty(env[AZURE_ENV.sasTokenFile]);
  if (sasFile) s.sasTokenFile = sasFile;
  const blockSize = nonEmpty(env[AZURE_ENV.blockSizeMiB]);
  if (blockSize) s.blockSize = parseBlockSizeMiB(blockSize, AZURE_ENV.blockSizeMiB);
  const concurrency = nonEmpty(env[AZURE_ENV.concurrency]);
  if (concurrency) s.concurrency = parseAzureConcurrency(concurrency, AZURE_ENV.concurrency);
  return s;
}

/**
 * The credentials the environment gives, under the names the az CLI and the SDK samples use:
 * `AZURE_STORAGE_KEY`, `AZURE_STORAGE_SAS_TOKEN`, `AZURE_STORAGE_CONNECTION_STRING`.
 */
export function azureSecretsFromEnv(env: Env): AzureSecrets {
  const s: AzureSecrets = {};
  const key = nonEmpty(env.AZURE_STORAGE_KEY);
  if (key) s.accountKey = key;
  const sas = nonEmpty(env.AZURE_STORAGE_SAS_TOKEN);
  if (sas) s.sasToken = sas;
  const cs = nonEmpty(env.AZURE_STORAGE_CONNECTION_STRING);
  if (cs) s.connectionString = cs;
  return s;
}

/** `over` field by field on top of `base` (flags over the environment). */
export function mergeAzureSettings(base: AzureSettings, over: AzureSettings): AzureSettings {
  const merged: AzureSettings = { ...base };
  for (const [name, value] of Object.entries(over)) {
    if (value !== undefined) (merged as Record<string, unknown>)[name] = value;
  }
  return merged;
}

/** The parts of a connection string this store uses. */
export interface ConnectionString {
  account?: string;
  accountKey?: string;
  sas?: string;
  blobEndpoint?: string;
}

/** Azurite's well-known development account, which `UseDevelopmentStorage=true` names. Not a secret. */
const DEVELOPMENT_ACCOUNT = "devstoreaccount1";
const DEVELOPMENT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/**
 * Parses a storage connection string (`Key=Value` pairs separated by `;`, as the Azure portal shows it).
 * Throws `UsageError` without echoing the string (it holds the key).
 */
export function parseConnectionString(text: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    const t = part.trim();
    if (!t) continue;
    const eq = t.indexOf("=");
    if (eq <= 0) {
      throw new UsageError(
        "AZURE_STORAGE_CONNECTION_STRING is not a connection string",
        "copy it from the storage account's Access keys page: DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...",
      );
    }
    fields.set(t.slice(0, eq).toLowerCase(), t.slice(eq + 1));
  }
  if (fields.get("usedevelopmentstorage")?.toLowerCase() === "true") {
    return {
      account: DEVELOPMENT_ACCOUNT,
      accountKey: DEVELOPMENT_KEY,
      blobEndpoint: `http://127.0.0.1:10000/${DEVELOPMENT_ACCOUNT}`,
    };
  }
  const out: ConnectionString = {};
  const account = fields.get("accountname");
  if (account) out.account = account;
  const key = fields.get("accountkey");
  if (key) out.accountKey = key;
  const sas = fields.get("sharedaccesssignature");
  if (sas) out.sas = sas;
  const blob = fields.get("blobendpoint");
  if (blob) out.blobEndpoint = blob;
  else if (account) {
    const protocol = fields.get("defaultendpointsprotocol") ?? "https";
    const suffix = fields.get("endpointsuffix") ?? "core.windows.net";
    out.blobEndpoint = `${protocol}://${account}.blob.${suffix}`;
  }
  return out;
}

/**
 * Applies defaults, reads the key or SAS file, and decides how to authenticate, first match wins:
 * 1. an account key (`secrets.accountKey`, `accountKeyFile`, the connection string's);
 * 2. a SAS token (`secrets.sasToken`, `sasTokenFile`, the connection string's);
 * 3. the SDK's DefaultAzureCredential (workload identity, managed identity, environment service principal, az).
 * The account and endpoint: the settings, then the connection string, then (account) the endpoint's first path
 * segment, as Azurite addresses accounts. Throws `UsageError`/`Hinted` naming what is wrong, never a secret.
 */
export function resolveAzureSettings(
  s: AzureSettings = {},
  secrets: AzureSecrets = {},
): ResolvedAzureSettings {
  const cs = secrets.connectionString ? parseConnectionString(secrets.connectionString) : {};
  let endpoint = s.endpoint ?? cs.blobEndpoint;
  if (endpoint) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new UsageError(
        `invalid Azure endpoint ${endpoint}`,
        "pass --azure-endpoint as https://ACCOUNT.blob.core.windows.net or http://127.0.0.1:10000/ACCOUNT",
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UsageError(
        `invalid Azure endpoint ${endpoint}`,
        "the endpoint must start with https:// or http://",
      );
    }
    if (url.search || url.username || url.password) {
      throw new UsageError(
        "the Azure endpoint must not carry a query or credentials",
        "give a SAS token with AZURE_STORAGE_SAS_TOKEN or --azure-sas-token-file",
      );
    }
    endpoint = `${url.origin}${url.pathname}`.replace(/\/+$/, "");
  }
  const account = s.account ?? cs.account ?? (endpoint ? accountFromPath(endpoint) : undefined);
  if (!account) {
    throw new UsageError(
      "no Azure storage account given",
      "pass --azure-account NAME or set AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_CONNECTION_STRING)",
    );
  }
  if (!/^[a-z0-9]{3,24}$/.test(account)) {
    throw new UsageError(
      `invalid Azure storage account name ${account}`,
      "account names are 3 to 24 lowercase letters and digits",
    );
  }
  endpoint ??= `https://${account}.blob.core.windows.net`;

  const accountKey =
    secrets.accountKey ?? readSecretFile(s.accountKeyFile, "--azure-account-key-file") ?? cs.accountKey;
  const sasToken = secrets.sasToken ?? readSecretFile(s.sasTokenFile, "--azure-sas-token-file") ?? cs.sas;
  let auth: AzureAuth;
  if (accountKey) {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey)) {
      throw new UsageError(
        "the Azure account key is not base64",
        "use one of the storage account's access keys as the portal shows it",
      );
    }
    auth = { kind: "shared key", accountKey };
  } else if (sasToken) {
    const token = sasToken.replace(/^\?/, "");
    if (!/(^|&)sig=/.test(token)) {
      throw new UsageError(
        "the Azure SAS token has no signature (sig=)",
        "give the token's query string, sv=...&sig=..., without the URL",
      );
    }
    auth = { kind: "sas", sasToken: token };
  } else auth = { kind: "default credential" };

  const blockSize = s.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new UsageError(
      `Azure block size ${blockSize} bytes is out of range`,
      "blocks are 1 MiB to 4000 MiB",
    );
  }
  const concurrency = s.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new UsageError(`Azure concurrency ${concurrency} is out of range`, "use 1 to 64 blocks at once");
  }
  const maxAttempts = s.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new UsageError("Azure max attempts must be at least 1");
  return {
    account,
    endpoint,
    auth,
    blockSize,
    concurrency,
    maxAttempts,
    retryBaseDelayMs: s.retryBaseDelayMs ?? 200,
    objectLock: checkObjectLock(s.objectLock),
    secrets: [accountKey, sasToken, secrets.connectionString].filter((v): v is string => !!v),
  };
}

/** Parses a block size given in MiB (`8`, `4.5`); throws `UsageError` with `what` in the message. */
export function parseBlockSizeMiB(value: string, what: string): number {
  const mib = Number(value);
  if (!Number.isFinite(mib) || mib <= 0) throw new UsageError(`${what}: ${value} is not a size in MiB`);
  const bytes = Math.round(mib * MiB);
  if (bytes < MIN_BLOCK_SIZE || bytes > MAX_BLOCK_SIZE) {
    throw new UsageError(`${what}: ${value} MiB is out of range`, "blocks are 1 MiB to 4000 MiB");
  }
  return bytes;
}

/** Parses a number of blocks staged at once (1 to 64). */
export function parseAzureConcurrency(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`${what}: ${value} is not 1 to 64`);
  return n;
}

/** Splits `azblob://container/some/prefix/` into the container and the prefix without its outer slashes. */
export function parseAzureDestination(dest: string): { container: string; prefix: string } {
  const rest = dest.replace(/^azblob:\/\//i, "");
  const slash = rest.indexOf("/");
  const container = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  // Container names: 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric.
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(container)) {
    throw new UsageError(
      `invalid Azure destination ${dest}`,
      "use azblob://container or azblob://container/prefix (containers are 3-63 lowercase letters, digits and hyphens)",
    );
  }
  if (prefix.includes("//"))
    throw new UsageError(`invalid Azure destination ${dest}: empty path segment in the prefix`);
  return { container, prefix };
}

function accountFromPath(endpoint: string): string | undefined {
  const first = new URL(endpoint).pathname.split("/").find(Boolean);
  return first || undefined;
}

function readSecretFile(path: string | undefined, flag: string): string | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new Hinted(`cannot read ${path} (${code})`, `check the ${flag} path`);
  }
  const value = text.trim();
  if (!value) throw new UsageError(`${path} is empty`, `put the secret into the ${flag} file`);
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}
