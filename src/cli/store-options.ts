import { type Command, Option } from "commander";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { addS3Options, type S3OptionValues, s3SettingsFromOptions } from "./s3-options.ts";

/** `--to DEST` (a directory, file:///path or s3://bucket/prefix) and the S3 flags. */
export function addStoreOptions(cmd: Command): Command {
  cmd.addOption(
    new Option("--to <dest>", "where backups are kept: a directory, file:///path or s3://bucket/prefix").env(
      "ETCD_BACKUP_TO",
    ),
  );
  return addS3Options(cmd);
}

export interface StoreFlags extends S3OptionValues {
  to?: string;
}

/** Opens the store; S3 settings come from the flags over the environment (AWS_*, ETCD_BACKUP_S3_*). */
export function storeFromFlags(flags: StoreFlags): Store {
  const dest = flags.to ?? "";
  return openStore(dest, /^s3:\/\//i.test(dest) ? s3SettingsFromOptions(flags) : undefined);
}
