import { Hinted } from "../errors.ts";
import {
  CONNECTION_FAILURE_CODES,
  explainConnectionFailure,
  TLS_VERIFICATION_CODES,
} from "./network-errors.ts";

/** What the Azure SDK's RestError (and @azure/identity's errors) tell us, read defensively. */
interface AzureErrorShape {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  details?: { errorCode?: string };
  errors?: unknown[];
}

const NETWORK_CODES = new Set([...CONNECTION_FAILURE_CODES, "REQUEST_SEND_ERROR"]);

/** Azure's answers to a request with a bad shared key or SAS signature. */
const AUTHENTICATION_CODES = new Set(["AuthenticationFailed", "InvalidAuthenticationInfo"]);

function shape(err: unknown): AzureErrorShape {
  return typeof err === "object" && err !== null ? (err as AzureErrorShape) : {};
}

/** Azure's error code (`BlobNotFound`, `ContainerNotFound`) or Node's (`ECONNREFUSED`). */
export function azureErrorCode(err: unknown): string | undefined {
  const e = shape(err);
  // A HEAD answer has no body: its code is only in the x-ms-error-code header, which the SDK puts in details.
  if (e.details?.errorCode) return e.details.errorCode;
  if (e.code && e.code !== "REQUEST_SEND_ERROR") return e.code;
  for (const inner of e.errors ?? []) {
    const code = shape(inner).code;
    if (code) return code;
  }
  return e.code;
}

export function azureStatus(err: unknown): number | undefined {
  return shape(err).statusCode;
}

/** A missing blob (404 that is not about the container). */
export function isBlobNotFound(err: unknown): boolean {
  const code = azureErrorCode(err);
  if (code === "ContainerNotFound") return false;
  return code === "BlobNotFound" || azureStatus(err) === 404;
}

/** An If-None-Match: * write that found the blob there: Azure answers 409 BlobAlreadyExists (412 on some paths). */
export function isBlobExists(err: unknown): boolean {
  const code = azureErrorCode(err);
  return code === "BlobAlreadyExists" || code === "ConditionNotMet" || azureStatus(err) === 412;
}

/**
 * A write or delete refused because the blob version is held: 409 `BlobImmutableDueToPolicy` (a version-level
 * policy or legal hold, or a container-level WORM policy).
 */
export function isImmutableRefusal(err: unknown): boolean {
  const code = azureErrorCode(err);
  if (code === "BlobImmutableDueToPolicy") return true;
  const message = shape(err).message ?? "";
  return azureStatus(err) === 409 && /immutab|legal hold/i.test(message);
}

/** Throttling, 5xx, request timeouts and network errors are worth retrying; other 4xx and TLS failures are not. */
export function isTransientAzureError(err: unknown): boolean {
  const e = shape(err);
  if (e.name === "AbortError") return false;
  const code = azureErrorCode(err);
  if (code && TLS_VERIFICATION_CODES.has(code)) return false;
  const status = azureStatus(err);
  if (status !== undefined) return status >= 500 || status === 429 || status === 408;
  return code !== undefined && NETWORK_CODES.has(code);
}

export interface AzureErrorContext {
  account: string;
  container: string;
  endpoint: string;
  /** How the store authenticates, to say which credential to check. */
  auth: "shared key" | "sas" | "default credential";
}

/**
 * Turns the SDK's error into the one the user should read: a `Hinted` for what users cause and can fix (wrong
 * key, missing container, denied access, unreachable endpoint, no identity), the error itself otherwise. The SDK's
 * error is not kept as the cause of a `Hinted`: its text adds nothing, and never a credential reaches the message.
 */
export function explainAzureError(err: unknown, ctx: AzureErrorContext): Error {
  const e = shape(err);
  const code = azureErrorCode(err);
  const status = azureStatus(err);
  const which =
    ctx.auth === "shared key"
      ? "check the account key (--azure-account-key-file, AZURE_STORAGE_KEY or the connection string)"
      : ctx.auth === "sas"
        ? "check the SAS token (AZURE_STORAGE_SAS_TOKEN or --azure-sas-token-file): its signature, expiry and permissions"
        : "check the identity's role assignment";
  if (e.name === "CredentialUnavailableError" || e.name === "AggregateAuthenticationError") {
    return new Hinted(
      "no Azure credentials found",
      "set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, pass --azure-account-key-file, or run with a workload or managed identity",
    );
  }
  if (e.name === "AuthenticationError") {
    return new Hinted(
      "Azure AD refused to issue a token for the storage account",
      "check the workload identity's client id and federated credential, or the managed identity",
    );
  }
  if (code && AUTHENTICATION_CODES.has(code)) {
    return new Hinted(`Azure rejected the credentials for account ${ctx.account} (${code})`, which);
  }
  if (code === "ContainerNotFound") {
    return new Hinted(
      `container ${ctx.container} does not exist in storage account ${ctx.account}`,
      `create it (az storage container create --account-name ${ctx.account} --name ${ctx.container}), or fix the container in --to`,
    );
  }
  if (status === 403) {
    // Azurite answers a wrong key with AuthorizationFailure; Azure uses it for a SAS or network rule that does
    // not allow the request. A HEAD's 403 has no code at all.
    return new Hinted(
      `Azure denied access to container ${ctx.container} in account ${ctx.account}${code ? ` (${code})` : ""}`,
      ctx.auth === "default credential"
        ? "grant the identity Storage Blob Data Contributor on the container"
        : `${which}; it needs read, write, delete, list, create and add on the container`,
    );
  }
  if (isImmutableRefusal(err)) {
    return new Hinted(
      `the blob is held by an immutability policy or a legal hold in container ${ctx.container} (${code ?? "HTTP 409"})`,
      "it can go once its policy expires and any legal hold is lifted",
    );
  }
  if (code === "AccountIsDisabled" || code === "ResourceNotFound" || code === "InvalidResourceName") {
    return new Hinted(
      `storage account ${ctx.account} cannot be used (${code})`,
      "check --azure-account and --azure-endpoint",
    );
  }
  const connection = explainConnectionFailure({ code, message: e.message, timedOut: false }, ctx.endpoint, {
    tls: "check --azure-endpoint; give Node the CA with NODE_EXTRA_CA_CERTS=FILE",
    refused: "check --azure-endpoint and that the service runs",
    unresolved: "check the account name (--azure-account), --azure-endpoint and DNS",
    unreachable: "check --azure-endpoint and the network",
  });
  if (connection) return connection;
  if (err instanceof Error) {
    // Azure's messages run over lines (RequestId, Time); the first says what happened.
    const first = (e.message ?? "").split("\n")[0]?.trim() ?? "";
    const text = code && !first.includes(code) ? `${code}: ${first}` : first;
    return new Error(status !== undefined ? `${text} (HTTP ${status})` : text || String(code));
  }
  return new Error(String(err));
}
