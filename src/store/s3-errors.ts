import { Hinted } from "../errors.ts";
import {
  CONNECTION_FAILURE_CODES,
  explainConnectionFailure,
  TLS_VERIFICATION_CODES,
} from "./network-errors.ts";

/** What the S3 SDK tells us about a failed request, read defensively (network errors carry none of it). */
interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $fault?: "client" | "server";
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
  errors?: unknown[];
}

const CREDENTIAL_CODES = new Set([
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "InvalidToken",
  "ExpiredToken",
  "InvalidSecurity",
  "AuthorizationHeaderMalformed",
]);

const THROTTLING_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
]);

const NETWORK_CODES = new Set(CONNECTION_FAILURE_CODES);

function shape(err: unknown): SdkErrorShape {
  return typeof err === "object" && err !== null ? (err as SdkErrorShape) : {};
}

/** The S3 error code (`NoSuchKey`, `SlowDown`) or the Node error code (`ECONNREFUSED`), looking into aggregates. */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = shape(err);
  if (e.code) return e.code;
  // Connecting to a host with several addresses fails with an AggregateError whose parts carry the code.
  for (const inner of e.errors ?? []) {
    const code = shape(inner).code;
    if (code) return code;
  }
  if (e.$metadata && e.name && e.name !== "Error") return e.name;
  return undefined;
}

export function httpStatus(err: unknown): number | undefined {
  return shape(err).$metadata?.httpStatusCode;
}

/** True for a missing key (GetObject's NoSuchKey, HeadObject's bare 404). */
export function isS3NotFound(err: unknown): boolean {
  const code = s3ErrorCode(err);
  if (code === "NoSuchBucket") return false;
  return code === "NoSuchKey" || code === "NotFound" || httpStatus(err) === 404;
}

/**
 * True for failures worth retrying: throttling (503 SlowDown, 429), any 5xx, request timeouts and network errors.
 * Other 4xx answers (bad credentials, access denied, missing bucket) are permanent; so are TLS failures.
 */
export function isTransientS3Error(err: unknown): boolean {
  const e = shape(err);
  const code = s3ErrorCode(err);
  if (code && TLS_VERIFICATION_CODES.has(code)) return false;
  if (e.name === "AbortError") return false;
  const status = httpStatus(err);
  // 409 to a conditional write racing another one for the same key: retrying gets the real answer (412 or 200).
  if (code === "ConditionalRequestConflict") return true;
  // 501: the service lacks the feature; asking again will not add it.
  if (code === "NotImplemented" || status === 501) return false;
  if (status !== undefined)
    return status >= 500 || status === 429 || (code !== undefined && THROTTLING_CODES.has(code));
  if (code && (NETWORK_CODES.has(code) || THROTTLING_CODES.has(code))) return true;
  return e.name === "TimeoutError" || e.$retryable !== undefined;
}

export interface S3ErrorContext {
  bucket: string;
  /** The endpoint as the user gave it, or AWS's regional one. */
  endpoint: string;
}

/**
 * Turns the SDK's error for a failed request into the one the user should read: a `Hinted` for the failures
 * users cause and can fix (credentials, missing bucket, access denied, TLS trust, unreachable endpoint), the
 * error itself otherwise. The message never contains a credential; the SDK's own error is not kept as the cause
 * of a `Hinted`, since its text adds nothing the hint does not say.
 */
export function explainS3Error(err: unknown, ctx: S3ErrorContext): Error {
  const e = shape(err);
  const code = s3ErrorCode(err);
  const status = httpStatus(err);
  if (e.name === "CredentialsProviderError") {
    return new Hinted(
      "no S3 credentials found",
      "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity (IRSA / pod identity)",
    );
  }
  if (code && CREDENTIAL_CODES.has(code)) {
    return new Hinted(
      `S3 rejected the credentials (${code})`,
      "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile",
    );
  }
  if (code === "NoSuchBucket") {
    return new Hinted(`bucket ${ctx.bucket} does not exist`, "create it, or fix the bucket name in --to");
  }
  if (code === "PermanentRedirect" || code === "IllegalLocationConstraintException") {
    return new Hinted(
      `bucket ${ctx.bucket} is in another region`,
      "pass --s3-region with the bucket's region",
    );
  }
  if (code === "AccessDenied" || code === "AllAccessDisabled" || status === 403) {
    // A HEAD request's 403 has no body, so bad credentials and missing permissions look the same there.
    return new Hinted(
      `S3 denied access to bucket ${ctx.bucket}`,
      "check that the credentials are right and allowed s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject",
    );
  }
  const connection = explainConnectionFailure(
    {
      code,
      message: e.message,
      timedOut: e.name === "TimeoutError",
    },
    ctx.endpoint,
    {
      tls: "pass --s3-ca FILE with the CA bundle, or --s3-insecure-skip-tls-verify",
      refused: "check --s3-endpoint and that the server runs",
      unresolved: "check --s3-endpoint and DNS",
      unreachable: "check --s3-endpoint and the network",
    },
  );
  if (connection) return connection;
  if (err instanceof Error) {
    // SDK service errors have a bare name as their message when the body was empty; give it the status.
    if (status !== undefined && code && !err.message.includes(code)) {
      return new Error(`${code} (HTTP ${status})`, { cause: err });
    }
    return err;
  }
  return new Error(String(err));
}
