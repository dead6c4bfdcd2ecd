import { Hinted } from "../errors.ts";
import { CONNECTION_FAILURE_CODES } from "./network-errors.ts";

/**
 * What a failed Google Cloud Storage request tells us, read defensively: the SDK's ApiError (`code` is the HTTP
 * status), gaxios' GaxiosError (`response.status`), our own `GcsHttpError` from a resumable session's requests,
 * google-auth-library's errors (messages only) and Node's network errors (`code` a string like ECONNREFUSED).
 */
interface ErrorShape {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  response?: { status?: unknown; data?: unknown };
  errors?: unknown[];
  cause?: unknown;
}

/** A non-2xx answer to one of our own requests on a resumable upload session (no body, no URL: they hold the id). */
export class GcsHttpError extends Error {
  override name = "GcsHttpError";
  readonly status: number;
  /** The JSON API's reason code (`retentionPolicyNotMet`), when the answer had one. */
  readonly reason: string | undefined;
  constructor(status: number, message: string, reason?: string) {
    super(message ? `HTTP ${status}: ${message}` : `HTTP ${status}`);
    this.status = status;
    this.reason = reason;
  }
}

function shape(err: unknown): ErrorShape {
  return typeof err === "object" && err !== null ? (err as ErrorShape) : {};
}

/** The HTTP status of a failed request, when the server answered. */
export function gcsStatus(err: unknown): number | undefined {
  const e = shape(err);
  if (typeof e.status === "number") return e.status;
  if (typeof e.code === "number") return e.code;
  if (typeof e.response?.status === "number") return e.response.status;
  return undefined;
}

const NETWORK_CODES = new Set([...CONNECTION_FAILURE_CODES, "ENOTFOUND", "UND_ERR_CONNECT_TIMEOUT"]);

/** A Node network error code (ECONNREFUSED...), looking into causes and aggregates. */
function networkCode(err: unknown): string | undefined {
  for (let cur = err, depth = 0; cur && depth < 6; depth++) {
    const e = shape(cur);
    if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return e.code;
    for (const inner of e.errors ?? []) {
      const code = shape(inner).code;
      if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    }
    cur = e.cause;
  }
  return undefined;
}

/** Throttling, server errors, a request timeout and network failures: worth another try. */
export function isTransientGcsError(err: unknown): boolean {
  const status = gcsStatus(err);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  if (networkCode(err)) return true;
  return err instanceof TypeError && /fetch failed/.test(err.message);
}

/**
 * The JSON API's reason for a failed request (`retentionPolicyNotMet`, `forbidden`...): the SDK's ApiError keeps
 * it in `errors[].reason`, gaxios in the answer's `error.errors[].reason`, our session errors in `reason`.
 */
export function gcsErrorReason(err: unknown): string | undefined {
  const e = shape(err);
  const fromData =
    typeof e.response?.data === "object" && e.response.data !== null
      ? (e.response.data as { error?: { errors?: unknown[] } }).error?.errors
      : undefined;
  for (const item of [...(e.errors ?? []), ...(fromData ?? [])]) {
    const reason = shape(item) as { reason?: unknown };
    if (typeof reason.reason === "string") return reason.reason;
  }
  const own = (e as { reason?: unknown }).reason;
  return typeof own === "string" ? own : undefined;
}

/** 404: the object (or, for a bucket-level request, the bucket) is not there. */
export function isGcsNotFound(err: unknown): boolean {
  return gcsStatus(err) === 404;
}

/** 412: a precondition (`ifGenerationMatch=0`: the object must not exist) did not hold. */
export function isPreconditionFailed(err: unknown): boolean {
  return gcsStatus(err) === 412;
}

/** The server's own message, first line only, without anything after a URL (an upload session's id). */
function serverMessage(err: unknown): string {
  // gaxios keeps the JSON API's answer apart ({"error": {"message": ...}}) and says only "Request failed".
  const data = shape(err).response?.data;
  const answered =
    typeof data === "object" && data !== null
      ? (data as { error?: { message?: unknown } }).error?.message
      : typeof data === "string"
        ? data
        : undefined;
  const raw = typeof answered === "string" && answered ? answered : shape(err).message;
  const text = typeof raw === "string" ? raw : "";
  return text
    .split("\n")[0]!
    .replace(/https?:\/\/\S*/g, "<url>")
    .trim();
}

/**
 * A one-line, actionable error, without the library's error as its cause (its message may quote a request URL,
 * and an upload session's URL is a credential) for a failed request (never the credentials' content: the auth library's
 * messages name files and fields, not values):
 * - no credentials found or unusable: what Application Default Credentials looked at, and how to give some;
 * - 401: the credentials were refused; 403: the permission missing (the server names it) and the roles to grant;
 * - a missing bucket: create it; a network failure: the endpoint that could not be reached.
 */
export function explainGcsError(err: unknown, ctx: { bucket: string; endpoint: string }): Error {
  const status = gcsStatus(err);
  const message = serverMessage(err);
  if (
    status === undefined &&
    /default credentials|could not load the default|credential|private key|client_email|invalid_grant|unauthorized_client|metadata/i.test(
      message,
    )
  ) {
    return new Hinted(
      `no usable Google credentials: ${message}`,
      "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run with workload identity or on a Google Cloud VM; see docs/gcs.md",
    );
  }
  if (status === 401) {
    return new Hinted(
      `Google Cloud Storage refused the credentials (401${message ? `: ${message}` : ""})`,
      "check GOOGLE_APPLICATION_CREDENTIALS or the workload identity binding; a deleted or disabled service-account key is refused this way",
    );
  }
  if (
    status === 403 &&
    (gcsErrorReason(err) === "retentionPolicyNotMet" || /retention|\bhold\b/i.test(message))
  ) {
    // Not a permission: the object is held (object retention, the bucket's retention policy, or a hold).
    return new Error(`held by Google Cloud Storage (403${message ? `: ${message}` : ""})`);
  }
  if (status === 403) {
    return new Hinted(
      `access to gs://${ctx.bucket} denied (403${message ? `: ${message}` : ""})`,
      "grant the service account roles/storage.objectCreator and roles/storage.objectViewer on the bucket, or a role with storage.objects.create/get/list/delete; see docs/gcs.md",
    );
  }
  if (status === 404 && /bucket/i.test(message)) {
    return missingBucket(ctx.bucket);
  }
  const code = networkCode(err);
  if (code) {
    return new Hinted(`cannot reach ${ctx.endpoint} (${code})`, "check --gcs-endpoint and the network");
  }
  // The server's message only: causes are printed too, and a library's may quote a session URL.
  if (status !== undefined) return new Error(`HTTP ${status}${message ? `: ${message}` : ""}`);
  return new Error(message || String(err));
}

/** The bucket does not exist: say so and how to create it. */
export function missingBucket(bucket: string): Hinted {
  return new Hinted(
    `bucket ${bucket} does not exist`,
    `create it first: gcloud storage buckets create gs://${bucket} --uniform-bucket-level-access`,
  );
}
