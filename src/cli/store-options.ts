import { type Command, Option } from "commander";
import { type AzureOptionValues, addAzureOptions } from "./azure-options.ts";
import { addGcsOptions, type GcsOptionValues } from "./gcs-options.ts";
import type { ObjectLockOptionValues } from "./object-lock-options.ts";
import { addS3Options, type S3OptionValues } from "./s3-options.ts";

/**
 * The store flags, without the stores: commands that may read a local file instead (status, get, inspect, diff)
 * load the store modules only when they open a store (`storeFromFlags` in store-from-flags.ts).
 *
 * `--to DEST` (a directory, file:///path, s3://bucket/prefix, gs://bucket/prefix or azblob://container/prefix) and
 * the store flags.
 */
export function addStoreOptions(cmd: Command): Command {
  cmd.addOption(
    new Option(
      "--to <dest>",
      "where backups are kept: a directory, file:///path, s3://bucket/prefix, gs://bucket/prefix or azblob://container/prefix",
    ).env("ETCD_BACKUP_TO"),
  );
  return addGcsOptions(addAzureOptions(addS3Options(cmd)));
}

export interface StoreFlags
  extends S3OptionValues,
    AzureOptionValues,
    GcsOptionValues,
    ObjectLockOptionValues {
  to?: string;
}
