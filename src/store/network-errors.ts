import { Hinted } from "../errors.ts";

/**
 * Node's codes for a connection that failed or dropped before the service answered: every store retries them.
 * A store adds its SDK's own words for the same thing (Azure's REQUEST_SEND_ERROR...).
 */
export const CONNECTION_FAILURE_CODES: readonly string[] = [
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
];

/** Node's codes for a TLS handshake that did not verify the endpoint: never retried, never the service's fault. */
export const TLS_VERIFICATION_CODES: ReadonlySet<string> = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);

/** What a store tells the user to check for each kind of connection failure: its own flags and tools. */
export interface ConnectionHints {
  /** The endpoint's certificate did not verify. */
  tls: string;
  /** Nothing listens at the endpoint. */
  refused: string;
  /** The endpoint's host name does not resolve. */
  unresolved: string;
  /** The endpoint did not answer in time, or no route leads to it. */
  unreachable: string;
}

/** A failed request as far as the connection goes, read by the store from its SDK's error. */
export interface ConnectionFailure {
  /** Node's code (ECONNREFUSED, CERT_HAS_EXPIRED...), when there is one. */
  code: string | undefined;
  /** The error's own message, quoted for a TLS failure (it says what did not verify). */
  message: string | undefined;
  /** The SDK gave up waiting without a code of Node's (S3's TimeoutError). */
  timedOut: boolean;
}

/**
 * A connection-level failure to a store's endpoint as one line: TLS verification, connection refused, a host
 * that does not resolve, an endpoint out of reach. `undefined` for anything else (the service answered, or the
 * failure is not about reaching it), which the store explains in its own words.
 */
export function explainConnectionFailure(
  failure: ConnectionFailure,
  endpoint: string,
  hints: ConnectionHints,
): Hinted | undefined {
  const { code } = failure;
  if (code && TLS_VERIFICATION_CODES.has(code)) {
    return new Hinted(`TLS verification of ${endpoint} failed: ${failure.message ?? code}`, hints.tls);
  }
  if (code === "ECONNREFUSED") {
    return new Hinted(`cannot connect to ${endpoint}: connection refused`, hints.refused);
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new Hinted(`cannot resolve the host of ${endpoint}`, hints.unresolved);
  }
  if (code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || failure.timedOut) {
    return new Hinted(`cannot reach ${endpoint}: ${code ?? "timed out"}`, hints.unreachable);
  }
  return undefined;
}
