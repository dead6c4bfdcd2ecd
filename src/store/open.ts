import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { AzureBlobStore } from "./azure-blob.ts";
import { type AzureSecrets, type AzureSettings, parseAzureDestination } from "./azure-settings.ts";
import { LocalStore } from "./local.ts";
import type { S3Credentials } from "./s3.ts";
import { S3Store } from "./s3.ts";
import type { S3Settings } from "./s3-settings.ts";
import type { Store } from "./store.ts";

/** What opening an `azblob://` destination needs besides the URL; the secrets are told to `onSecret`. */
export interface AzureOpenOptions {
  settings?: AzureSettings;
  secrets?: AzureSecrets;
  /** Receives each secret value the store authenticates with (a key read from a file), for the redactor. */
  onSecret?: (secret: string) => void;
}

/**
 * Opens the store a destination names: a directory path, `file:///path`, `s3://bucket/prefix` or
 * `azblob://container/prefix` (the prefix may be empty; keys are relative to it). `s3` carries the S3 settings
 * (endpoint, region, TLS, part size...) and is ignored for other destinations; S3 credentials come from the AWS
 * SDK's default chain unless `secrets` gives them (with a CA bundle's contents, for callers that read them from
 * Secrets). `azure` carries the Azure settings and credentials (see `resolveAzureSettings` for which is used).
 * Throws `UsageError` for a destination it cannot understand or an invalid S3 setting.
 */
export function openStore(
  dest: string,
  s3?: S3Settings,
  secrets: { credentials?: S3Credentials; caPem?: Buffer; warn?: (line: string) => void } = {},
  azure: AzureOpenOptions = {},
): Store {
  if (!dest) throw new UsageError("no destination given", "pass --to DIR or --to s3://bucket/prefix");
  if (dest.startsWith("file://")) return new LocalStore(fileURLToPath(dest));
  if (/^s3:\/\//i.test(dest)) {
    const { bucket, prefix } = parseS3Destination(dest);
    return new S3Store({ bucket, prefix, ...(s3 ? { settings: s3 } : {}), ...secrets });
  }
  if (/^azblob:\/\//i.test(dest)) {
    const { container, prefix } = parseAzureDestination(dest);
    const store = new AzureBlobStore({
      container,
      prefix,
      ...(azure.settings ? { settings: azure.settings } : {}),
      ...(azure.secrets ? { secrets: azure.secrets } : {}),
      ...(secrets.warn ? { warn: secrets.warn } : {}),
    });
    for (const secret of store.secrets) azure.onSecret?.(secret);
    return store;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dest)) {
    throw new UsageError(
      `unsupported destination ${dest}`,
      "use a directory, file:///path, s3://bucket/prefix or azblob://container/prefix",
    );
  }
  return new LocalStore(dest);
}

/** Splits `s3://bucket/some/prefix/` into the bucket and the prefix without its outer slashes. */
export function parseS3Destination(dest: string): { bucket: string; prefix: string } {
  const rest = dest.replace(/^s3:\/\//i, "");
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  // Bucket names are 3-63 lowercase letters, digits, dots and hyphens; older regions allowed more, so be lenient.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) {
    throw new UsageError(`invalid S3 destination ${dest}`, "use s3://bucket or s3://bucket/prefix");
  }
  if (prefix.includes("//"))
    throw new UsageError(`invalid S3 destination ${dest}: empty path segment in the prefix`);
  return { bucket, prefix };
}
