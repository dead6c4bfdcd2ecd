import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { LocalStore } from "./local.ts";
import type { Store } from "./store.ts";

/**
 * Opens the store a destination names: a directory path, `file:///path`, or `s3://bucket/prefix`.
 * Throws `UsageError` for a destination it cannot understand.
 */
export function openStore(dest: string): Store {
  if (!dest) throw new UsageError("no destination given", "pass --to DIR or --to s3://bucket/prefix");
  if (dest.startsWith("file://")) return new LocalStore(fileURLToPath(dest));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dest)) {
    throw new UsageError(`unsupported destination ${dest}`, "use a directory, file:///path or s3://bucket/prefix");
  }
  return new LocalStore(dest);
}
