import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { LocalStore } from "./local.ts";
import type { S3Credentials } from "./s3.ts";
import { S3Store } from "./s3.ts";
import type { S3Settings } from "./s3-settings.ts";
import type { Store } from "./store.ts";

/**
 * Opens the store a destination names: a directory path, `file:///path`, or `s3://bucket/prefix` (the prefix may
 * be empty; keys are relative to it). `s3` carries the S3 settings (endpoint, region, TLS, part size...) and is
 * ignored for local destinations; S3 credentials come from the AWS SDK's default chain unless `secrets` gives
 * them (with a CA bundle's contents, for callers that read them from Secrets).
 * Throws `UsageError` for a destination it cannot understand or an invalid S3 setting.
 */
export function openStore(
  dest: string,
  s3?: S3Settings,
  secrets: { credentials?: S3Credentials; caPem?: Buffer; warn?: (line: string) => void } = {},
): Store {
  if (!dest) throw new UsageError("no destination given", "pass --to DIR or --to s3://bucket/prefix");
  if (dest.startsWith("file://")) return new LocalStore(fileURLToPath(dest));
  if (/^s3:\/\//i.test(dest)) {
    const { bucket, prefix } = parseS3Destination(dest);
    return new S3Store({ bucket, prefix, ...(s3 ? { settings: s3 } : {}), ...secrets });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dest)) {
    throw new UsageError(
      `unsupported destination ${dest}`,
      "use a directory, file:///path or s3://bucket/prefix",
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
