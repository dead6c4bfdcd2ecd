import { type Command, Option } from "commander";
import { processRedactor } from "../observability/redact.ts";
import { azureSecretsFromEnv } from "../store/azure-settings.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { type AzureOptionValues, addAzureOptions, azureSettingsFromOptions } from "./azure-options.ts";
import { addS3Options, type S3OptionValues, s3SettingsFromOptions } from "./s3-options.ts";

/** `--to DEST` (a directory, file:///path, s3://bucket/prefix or azblob://container/prefix) and the store flags. */
export function addStoreOptions(cmd: Command): Command {
  cmd.addOption(
    new Option(
      "--to <dest>",
      "where backups are kept: a directory, file:///path, s3://bucket/prefix or azblob://container/prefix",
    ).env("ETCD_BACKUP_TO"),
  );
  return addAzureOptions(addS3Options(cmd));
}

export interface StoreFlags extends S3OptionValues, AzureOptionValues {
  to?: string;
}

/**
 * Opens the store; S3 settings come from the flags over the environment (AWS_*, ETCD_BACKUP_S3_*), Azure settings
 * likewise (AZURE_STORAGE_*, ETCD_BACKUP_AZURE_*), and a key read from a file is registered with the redactor.
 */
export function storeFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): Store {
  const dest = flags.to ?? "";
  const azure = /^azblob:\/\//i.test(dest)
    ? {
        settings: azureSettingsFromOptions(flags, env),
        secrets: azureSecretsFromEnv(env),
        onSecret: (secret: string) => processRedactor.add(secret),
      }
    : {};
  return openStore(dest, /^s3:\/\//i.test(dest) ? s3SettingsFromOptions(flags) : undefined, {}, azure);
}
