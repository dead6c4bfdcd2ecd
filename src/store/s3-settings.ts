import { isIP } from "node:net";
import { UsageError } from "../errors.ts";

const MiB = 1024 * 1024;

/** S3's own limits on multipart parts. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;

export const DEFAULT_REGION = "us-east-1";
// 8 MiB x (4 + 1) buffers = 40 MiB of part memory: the AWS CLI's part size, and within the 150 MiB RSS goal.
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_CONCURRENCY = 4;

export type ServerSideEncryption = "AES256" | "aws:kms";

/** S3 Object Lock retention modes, as our flags spell them. */
export const OBJECT_LOCK_MODES = ["governance", "compliance"] as const;
export type ObjectLockMode = (typeof OBJECT_LOCK_MODES)[number];
/** The longest retention accepted: 100 years (S3 itself allows more; more than this is a typo). */
export const MAX_OBJECT_LOCK_DAYS = 36_500;

/**
 * How backup data is locked when written (S3 Object Lock): a retention `mode` for `days` from the write, and/or a
 * legal hold. Only objects put with `immutable` (backups, manifests, log segments) are locked.
 */
export interface ObjectLockSettings {
  mode?: ObjectLockMode;
  /** Required with `mode` (the job configuration fills it from --keep-within when it can). */
  days?: number;
  legalHold?: boolean;
}

/**
 * How to reach an S3-compatible service, as given by flags, the environment or a config object. Every field is
 * optional; `resolveS3Settings` fills in the defaults. Credentials are not part of it on purpose: they come from
 * the AWS SDK's default provider chain (environment, shared profile, web identity for IRSA / pod identity).
 */
export interface S3Settings {
  /** `https://host:port`; none means AWS itself. */
  endpoint?: string;
  region?: string;
  /** `true`/`false` force an addressing style; unset chooses path style for IP and `localhost` endpoints. */
  pathStyle?: boolean;
  /** PEM file with the CA certificates to trust for the endpoint (added to Node's defaults). */
  caFile?: string;
  insecureSkipTlsVerify?: boolean;
  /** Bytes per multipart part; memory is about `partSize × (concurrency + 1)`. */
  partSize?: number;
  /** Parts uploaded at once. */
  concurrency?: number;
  sse?: ServerSideEncryption;
  sseKmsKeyId?: string;
  storageClass?: string;
  /** Use the SDK's default checksum behaviour instead of sending and checking checksums only when required. */
  sdkChecksums?: boolean;
  /** Attempts per request for transient failures (5xx, throttling, network), including the first. */
  maxAttempts?: number;
  /** First retry delay in milliseconds; later ones double, with full jitter. */
  retryBaseDelayMs?: number;
  /** Lock backup data when writing it (S3 Object Lock); unset: nothing is locked by us. */
  objectLock?: ObjectLockSettings;
}

/** `S3Settings` with defaults applied and every value checked. */
export interface ResolvedS3Settings {
  endpoint: string | undefined;
  region: string;
  pathStyle: boolean;
  caFile: string | undefined;
  insecureSkipTlsVerify: boolean;
  partSize: number;
  concurrency: number;
  sse: ServerSideEncryption | undefined;
  sseKmsKeyId: string | undefined;
  storageClass: string | undefined;
  sdkChecksums: boolean;
  maxAttempts: number;
  retryBaseDelayMs: number;
  /** Checked: a mode comes with its days; undefined when neither a mode nor a legal hold was asked for. */
  objectLock: ObjectLockSettings | undefined;
}

type Env = Record<string, string | undefined>;

/** Environment variables of our own for the settings that have no AWS standard name. */
export const S3_ENV = {
  pathStyle: "ETCD_BACKUP_S3_PATH_STYLE",
  caFile: "ETCD_BACKUP_S3_CA",
  insecureSkipTlsVerify: "ETCD_BACKUP_S3_INSECURE_SKIP_TLS_VERIFY",
  partSizeMiB: "ETCD_BACKUP_S3_PART_SIZE",
  concurrency: "ETCD_BACKUP_S3_CONCURRENCY",
  sse: "ETCD_BACKUP_S3_SSE",
  sseKmsKeyId: "ETCD_BACKUP_S3_SSE_KMS_KEY_ID",
  storageClass: "ETCD_BACKUP_S3_STORAGE_CLASS",
  sdkChecksums: "ETCD_BACKUP_S3_SDK_CHECKSUMS",
} as const;

/**
 * S3 settings from the environment, first match wins:
 * - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, then talos-backup's `CUSTOM_S3_ENDPOINT` (a bare host
 *   means https, as talos-backup treats it);
 * - region: `AWS_REGION`, `AWS_DEFAULT_REGION`;
 * - CA bundle: `ETCD_BACKUP_S3_CA`, then `AWS_CA_BUNDLE` (the AWS CLI's name);
 * - path style: `ETCD_BACKUP_S3_PATH_STYLE`, then talos-backup's `USE_PATH_STYLE` when it says true. An endpoint
 *   taken from `CUSTOM_S3_ENDPOINT` that is not on amazonaws.com gets path style, as talos-backup's S3 client
 *   (minio-go, automatic bucket lookup) addresses such endpoints;
 * - the rest from the `ETCD_BACKUP_S3_*` names in `S3_ENV`.
 * Credentials are left to the SDK, which reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, ...
 * Throws `UsageError` for a value that does not parse.
 */
export function s3SettingsFromEnv(env: Env): S3Settings {
  const s: S3Settings = {};
  const awsEndpoint = nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  const talosEndpoint = nonEmpty(env.CUSTOM_S3_ENDPOINT);
  if (awsEndpoint) s.endpoint = awsEndpoint;
  else if (talosEndpoint) {
    s.endpoint = /^[a-z][a-z0-9+.-]*:\/\//i.test(talosEndpoint) ? talosEndpoint : `https://${talosEndpoint}`;
  }
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
  if (region) s.region = region;
  const caFile = nonEmpty(env[S3_ENV.caFile]) ?? nonEmpty(env.AWS_CA_BUNDLE);
  if (caFile) s.caFile = caFile;

  const pathStyle = parseBool(env[S3_ENV.pathStyle], S3_ENV.pathStyle);
  if (pathStyle !== undefined) s.pathStyle = pathStyle;
  else if (parseBool(env.USE_PATH_STYLE, "USE_PATH_STYLE") === true) s.pathStyle = true;
  else if (!awsEndpoint && talosEndpoint && !isAwsHost(s.endpoint ?? "")) s.pathStyle = true;

  const insecure = parseBool(env[S3_ENV.insecureSkipTlsVerify], S3_ENV.insecureSkipTlsVerify);
  if (insecure !== undefined) s.insecureSkipTlsVerify = insecure;
  const partSize = nonEmpty(env[S3_ENV.partSizeMiB]);
  if (partSize) s.partSize = parsePartSizeMiB(partSize, S3_ENV.partSizeMiB);
  const concurrency = nonEmpty(env[S3_ENV.concurrency]);
  if (concurrency) s.concurrency = parseConcurrency(concurrency, S3_ENV.concurrency);
  const sse = nonEmpty(env[S3_ENV.sse]);
  if (sse) s.sse = parseSse(sse, S3_ENV.sse);
  const kms = nonEmpty(env[S3_ENV.sseKmsKeyId]);
  if (kms) s.sseKmsKeyId = kms;
  const storageClass = nonEmpty(env[S3_ENV.storageClass]);
  if (storageClass) s.storageClass = storageClass;
  const sdkChecksums = parseBool(env[S3_ENV.sdkChecksums], S3_ENV.sdkChecksums);
  if (sdkChecksums !== undefined) s.sdkChecksums = sdkChecksums;
  return s;
}

/**
 * `over` field by field on top of `base` (flags over the environment): a field set in `over` wins, an unset one
 * keeps `base`'s value. When `over` names an endpoint, a path style that `base` derived for its own endpoint does
 * not carry over.
 */
export function mergeS3Settings(base: S3Settings, over: S3Settings): S3Settings {
  const merged: S3Settings = { ...base };
  if (over.endpoint !== undefined && over.pathStyle === undefined) delete merged.pathStyle;
  for (const [name, value] of Object.entries(over)) {
    if (value !== undefined) (merged as Record<string, unknown>)[name] = value;
  }
  return merged;
}

/**
 * The destination talos-backup's environment describes, `s3://$BUCKET/$S3_PREFIX`, with talos-backup's rules:
 * the prefix defaults to `CLUSTER_NAME` and loses its leading slashes. Undefined without `BUCKET`.
 */
export function talosBackupDestination(env: Env): string | undefined {
  const bucket = nonEmpty(env.BUCKET);
  if (!bucket) return undefined;
  const prefix = (nonEmpty(env.S3_PREFIX) ?? nonEmpty(env.CLUSTER_NAME) ?? "").replace(/^\/+|\/+$/g, "");
  return prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`;
}

/** Applies defaults and checks every value; throws `UsageError` naming the setting that is wrong. */
export function resolveS3Settings(s: S3Settings = {}): ResolvedS3Settings {
  let endpoint: string | undefined;
  if (s.endpoint) {
    let url: URL;
    try {
      url = new URL(s.endpoint);
    } catch {
      throw new UsageError(`invalid S3 endpoint ${s.endpoint}`, "pass --s3-endpoint as https://host[:port]");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UsageError(
        `invalid S3 endpoint ${s.endpoint}`,
        "the endpoint must start with https:// or http://",
      );
    }
    endpoint = s.endpoint.replace(/\/+$/, "");
  }
  const partSize = s.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new UsageError(`S3 part size ${partSize} bytes is out of range`, "S3 parts are 5 MiB to 5 GiB");
  }
  const concurrency = s.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new UsageError(`S3 concurrency ${concurrency} is out of range`, "use 1 to 64 parts at once");
  }
  if (s.sseKmsKeyId && s.sse !== "aws:kms") {
    throw new UsageError("an SSE KMS key id needs aws:kms encryption", "add --s3-sse aws:kms");
  }
  const maxAttempts = s.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new UsageError("S3 max attempts must be at least 1");
  return {
    endpoint,
    region: s.region || DEFAULT_REGION,
    pathStyle: s.pathStyle ?? (endpoint !== undefined && needsPathStyle(endpoint)),
    caFile: s.caFile || undefined,
    insecureSkipTlsVerify: s.insecureSkipTlsVerify ?? false,
    partSize,
    concurrency,
    sse: s.sse,
    sseKmsKeyId: s.sseKmsKeyId || undefined,
    storageClass: s.storageClass || undefined,
    sdkChecksums: s.sdkChecksums ?? false,
    maxAttempts,
    retryBaseDelayMs: s.retryBaseDelayMs ?? 200,
    objectLock: resolveObjectLock(s.objectLock),
  };
}

function resolveObjectLock(lock: ObjectLockSettings | undefined): ObjectLockSettings | undefined {
  if (!lock || (lock.mode === undefined && !lock.legalHold)) {
    if (lock?.days !== undefined)
      throw new UsageError("--s3-object-lock-days needs --s3-object-lock", "add --s3-object-lock governance");
    return undefined;
  }
  if (lock.mode !== undefined && !OBJECT_LOCK_MODES.includes(lock.mode)) {
    throw new UsageError(`unknown object lock mode ${lock.mode}`, "use governance or compliance");
  }
  if (lock.mode !== undefined && lock.days === undefined) {
    throw new UsageError(
      `--s3-object-lock ${lock.mode} needs --s3-object-lock-days`,
      "pass --s3-object-lock-days N, or --keep-within to lock each backup as long as it is kept",
    );
  }
  if (lock.days !== undefined && lock.mode === undefined) {
    throw new UsageError("--s3-object-lock-days needs --s3-object-lock", "add --s3-object-lock governance");
  }
  if (
    lock.days !== undefined &&
    (!Number.isInteger(lock.days) || lock.days < 1 || lock.days > MAX_OBJECT_LOCK_DAYS)
  ) {
    throw new UsageError(
      `--s3-object-lock-days ${lock.days} is out of range`,
      `use 1 to ${MAX_OBJECT_LOCK_DAYS} days`,
    );
  }
  return {
    ...(lock.mode !== undefined ? { mode: lock.mode, days: lock.days! } : {}),
    ...(lock.legalHold ? { legalHold: true } : {}),
  };
}

/** The variable for `--s3-legal-hold`. */
export const LEGAL_HOLD_ENV = "ETCD_BACKUP_S3_LEGAL_HOLD";

/**
 * `ETCD_BACKUP_S3_LEGAL_HOLD` as true/false/unset. Read here rather than by commander, which would take any
 * value of a boolean flag's variable (`false` too) as "on": a legal hold nobody asked for keeps backups forever.
 */
export function legalHoldFromEnv(env: Env): boolean | undefined {
  return parseBool(env[LEGAL_HOLD_ENV], LEGAL_HOLD_ENV);
}

/** Parses `--s3-object-lock`'s mode (case-insensitive, as S3 spells it in capitals). */
export function parseObjectLockMode(value: string, what: string): ObjectLockMode {
  const v = value.trim().toLowerCase();
  if ((OBJECT_LOCK_MODES as readonly string[]).includes(v)) return v as ObjectLockMode;
  throw new UsageError(`${what}: unknown object lock mode ${value}`, "use governance or compliance");
}

/** Parses a number of days to lock for (1 to 36500). */
export function parseObjectLockDays(value: string, what: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < 1 || n > MAX_OBJECT_LOCK_DAYS) {
    throw new UsageError(`${what}: ${value} is not a whole number of days from 1 to ${MAX_OBJECT_LOCK_DAYS}`);
  }
  return n;
}

/**
 * True when virtual-host addressing (`bucket.host`) cannot work for the endpoint: its host is an IP address or
 * `localhost`.
 */
export function needsPathStyle(endpoint: string): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    return false;
  }
  host = host.replace(/^\[|\]$/g, "");
  return isIP(host) !== 0 || host === "localhost" || host.endsWith(".localhost");
}

/** The warning printed whenever TLS verification is turned off. */
export function insecureTlsWarning(endpoint: string | undefined): string {
  return (
    `warning: TLS certificate verification is DISABLED for ${endpoint ?? "the S3 endpoint"}; ` +
    "anyone on the network path can read and alter backups (use --s3-ca FILE instead)"
  );
}

/** Parses a part size given in MiB (`16`, `8.5`); throws `UsageError` with `what` in the message. */
export function parsePartSizeMiB(value: string, what: string): number {
  const mib = Number(value);
  if (!Number.isFinite(mib) || mib <= 0) throw new UsageError(`${what}: ${value} is not a size in MiB`);
  const bytes = Math.round(mib * MiB);
  if (bytes < MIN_PART_SIZE || bytes > MAX_PART_SIZE) {
    throw new UsageError(`${what}: ${value} MiB is out of range`, "S3 parts are 5 MiB to 5 GiB");
  }
  return bytes;
}

/** Parses a number of parts uploaded at once (1 to 64). */
export function parseConcurrency(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`${what}: ${value} is not 1 to 64`);
  return n;
}

/** Parses a server-side encryption mode, `AES256` or `aws:kms`. */
export function parseSse(value: string, what: string): ServerSideEncryption {
  if (value === "AES256" || value === "aws:kms") return value;
  throw new UsageError(`${what}: unknown server-side encryption ${value}`, "use AES256 or aws:kms");
}

function parseBool(value: string | undefined, what: string): boolean | undefined {
  const v = value?.trim().toLowerCase();
  if (!v) return undefined;
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new UsageError(`${what}: ${value} is not true or false`);
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}

function isAwsHost(endpoint: string): boolean {
  try {
    const host = new URL(endpoint).hostname;
    return host === "amazonaws.com" || host.endsWith(".amazonaws.com");
  } catch {
    return false;
  }
}
