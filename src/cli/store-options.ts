import { type Command, Option } from "commander";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { addGcsOptions, type GcsOptionValues, gcsSettingsFromOptions } from "./gcs-options.ts";
import { addS3Options, type S3OptionValues, s3SettingsFromOptions } from "./s3-options.ts";

/** `--to DEST` (a directory, file:///path, s3://bucket/prefix or gs://bucket/prefix) and the S3 and GCS flags. */
export function addStoreOptions(cmd: Command): Command {
  cmd.addOption(
    new Option(
      "--to <dest>",
      "where backups are kept: a directory, file:///path, s3://bucket/prefix or gs://bucket/prefix",
    ).env("ETCD_BACKUP_TO"),
  );
  return addGcsOptions(addS3Options(cmd));
}

export interface StoreFlags extends S3OptionValues, GcsOptionValues {
  to?: string;
}

/**
 * Opens the store; S3 settings come from the flags over the environment (AWS_*, ETCD_BACKUP_S3_*), GCS settings
 * from the flags over STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT.
 */
export function storeFromFlags(flags: StoreFlags): Store {
  const dest = flags.to ?? "";
  if (/^gs:\/\//i.test(dest))
    return openStore(dest, undefined, { gcs: { settings: gcsSettingsFromOptions(flags) } });
  return openStore(dest, /^s3:\/\//i.test(dest) ? s3SettingsFromOptions(flags) : undefined);
}
