import { UsageError } from "../errors.ts";
import { checkObjectLock } from "./object-lock-settings.ts";
import type { ObjectLockSettings } from "./s3-settings.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Resumable upload chunks must be multiples of 256 KiB (all but the last). */
export const CHUNK_GRANULE = 256 * KiB;
export const DEFAULT_CHUNK_SIZE = 8 * MiB;
export const MAX_CHUNK_SIZE = 512 * MiB;

/** How to reach Google Cloud Storage. Credentials are not settings: see `GcsStoreOptions.credentialsJson`. */
export interface GcsSettings {
  /**
   * The JSON API's base URL, for emulators (`http://127.0.0.1:4443`) and private endpoints; default
   * `https://storage.googleapis.com`. Requests to another host carry no credentials unless some were given
   * explicitly (a key file or a Secret): an emulator needs none, and none are looked for.
   */
  endpoint?: string;
  /** The project, where a request needs one (none of the store's do); default: the credentials'. */
  project?: string;
  /** Bytes per resumable upload request (a multiple of 256 KiB); memory is about twice this. Default 8 MiB. */
  chunkSize?: number;
  /** Attempts per request, the first included (default 5); backoff starts at `retryBaseDelayMs` (default 200). */
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  /**
   * Lock backup data when writing it: `mode` with `days` becomes the object's retention (governance: `Unlocked`,
   * compliance: `Locked`, until the write's time plus the days), `legalHold` a temporary hold. The bucket must
   * have object retention enabled for a mode. Unset: nothing is locked by us.
   */
  objectLock?: ObjectLockSettings;
}

export interface ResolvedGcsSettings {
  endpoint: string | undefined;
  project: string | undefined;
  chunkSize: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  /** Checked: a mode comes with its days; undefined when neither a mode nor a hold was asked for. */
  objectLock: ObjectLockSettings | undefined;
}

/** Defaults filled in and the chunk size checked. Throws `UsageError` for an unusable value. */
export function resolveGcsSettings(s: GcsSettings = {}): ResolvedGcsSettings {
  const chunkSize = s.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < CHUNK_GRANULE || chunkSize > MAX_CHUNK_SIZE) {
    throw new UsageError(`invalid GCS chunk size ${chunkSize}`, "use 256 KiB to 512 MiB");
  }
  if (chunkSize % CHUNK_GRANULE !== 0) {
    throw new UsageError(`invalid GCS chunk size ${chunkSize}`, "use a multiple of 256 KiB");
  }
  return {
    endpoint: s.endpoint ? normaliseEndpoint(s.endpoint) : undefined,
    project: s.project || undefined,
    chunkSize,
    maxAttempts: s.maxAttempts ?? 5,
    retryBaseDelayMs: s.retryBaseDelayMs ?? 200,
    objectLock: checkObjectLock(s.objectLock),
  };
}

/**
 * `http://127.0.0.1:4443`, `127.0.0.1:4443` (STORAGE_EMULATOR_HOST's usual form: plain HTTP) or
 * `https://host/`: the origin and path without a trailing slash or the API's own `/storage/v1`.
 */
export function normaliseEndpoint(endpoint: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`invalid GCS endpoint ${endpoint}`, "use a URL such as http://127.0.0.1:4443");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`invalid GCS endpoint ${endpoint}`, "use an http:// or https:// URL");
  if (url.username || url.password)
    throw new UsageError("invalid GCS endpoint: it holds credentials", "give credentials another way");
  const path = url.pathname.replace(/\/+$/, "").replace(/\/storage\/v1$/, "");
  return `${url.origin}${path}`;
}

/**
 * Settings the environment gives: STORAGE_EMULATOR_HOST (the emulators' and Google's client libraries'
 * variable) for the endpoint, GOOGLE_CLOUD_PROJECT for the project.
 */
export function gcsSettingsFromEnv(env: Record<string, string | undefined> = process.env): GcsSettings {
  const out: GcsSettings = {};
  if (env.STORAGE_EMULATOR_HOST) out.endpoint = env.STORAGE_EMULATOR_HOST;
  if (env.GOOGLE_CLOUD_PROJECT) out.project = env.GOOGLE_CLOUD_PROJECT;
  return out;
}
