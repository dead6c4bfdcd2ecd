import { UsageError } from "../errors.ts";
import { processRedactor } from "../observability/redact.ts";
import { azureSecretsFromEnv } from "../store/azure-settings.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { azureSettingsFromOptions } from "./azure-options.ts";
import { gcsSettingsFromOptions } from "./gcs-options.ts";
import { type ObjectLockOptionValues, objectLockFromOptions } from "./object-lock-options.ts";
import { s3SettingsFromOptions } from "./s3-options.ts";
import type { StoreFlags } from "./store-options.ts";

/** The lock flags, for the refusal of a lock on a directory. */
const LOCK_FLAGS: [keyof ObjectLockOptionValues, string][] = [
  ["objectLock", "--object-lock"],
  ["objectLockDays", "--object-lock-days"],
  ["legalHold", "--legal-hold"],
  ["s3ObjectLock", "--s3-object-lock"],
  ["s3ObjectLockDays", "--s3-object-lock-days"],
  ["s3LegalHold", "--s3-legal-hold"],
];

/**
 * Opens the store; S3 settings come from the flags over the environment (AWS_*, ETCD_BACKUP_S3_*), Azure settings
 * likewise (AZURE_STORAGE_*, ETCD_BACKUP_AZURE_*), and a key read from a file is registered with the redactor; GCS
 * settings from the flags over STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT. The object-lock flags (on the
 * commands that write) go to whichever object store the destination is.
 */
export function storeFromFlags(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): Store {
  const dest = flags.to ?? "";
  if (/^gs:\/\//i.test(dest)) {
    const objectLock = objectLockFromOptions(flags, env);
    const settings = { ...gcsSettingsFromOptions(flags, env), ...(objectLock ? { objectLock } : {}) };
    return openStore(dest, undefined, { gcs: { settings, env } });
  }
  const objectLock = /^azblob:\/\//i.test(dest) ? objectLockFromOptions(flags, env) : undefined;
  const azure = /^azblob:\/\//i.test(dest)
    ? {
        settings: { ...azureSettingsFromOptions(flags, env), ...(objectLock ? { objectLock } : {}) },
        secrets: azureSecretsFromEnv(env),
        onSecret: (secret: string) => processRedactor.add(secret),
      }
    : {};
  const lockFlag = LOCK_FLAGS.find(([name]) => flags[name] !== undefined && flags[name] !== false);
  if (dest && !/^(s3|azblob|gs):\/\//i.test(dest) && lockFlag) {
    throw new UsageError(
      `${lockFlag[1]}: ${dest} is not an object store, nothing there can be locked`,
      `write to s3://, gs:// or azblob://, or drop ${lockFlag[1]}`,
    );
  }
  return openStore(dest, /^s3:\/\//i.test(dest) ? s3SettingsFromOptions(flags, env) : undefined, {}, azure);
}
