import { talosBackupDestination } from "../store/s3-settings.ts";

type Env = Record<string, string | undefined>;

/**
 * talos-backup's configuration, read from its environment variables with its exact rules (pkg/config/service.go):
 * `BUCKET`, `S3_PREFIX`, `CLUSTER_NAME`, `AGE_X25519_PUBLIC_KEY`, and the switches `ENABLE_COMPRESSION` and
 * `DISABLE_ENCRYPTION`, which are on only for the exact string `true`. The S3 endpoint, region and path style
 * (`CUSTOM_S3_ENDPOINT`, `AWS_REGION`, `USE_PATH_STYLE`) are the S3 settings' business (`s3SettingsFromEnv`).
 */
export interface TalosBackupEnv {
  /** True when `BUCKET` is set: the environment is a talos-backup configuration. */
  present: boolean;
  bucket?: string;
  s3Prefix?: string;
  clusterName?: string;
  ageRecipient?: string;
  /** talos-backup compresses (zstd) only with ENABLE_COMPRESSION=true; undefined when the variable is unset. */
  enableCompression?: boolean;
  disableEncryption: boolean;
}

/** Reads talos-backup's variables; see `TalosBackupEnv`. */
export function readTalosBackupEnv(env: Env = process.env): TalosBackupEnv {
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const out: TalosBackupEnv = {
    present: value("BUCKET") !== undefined,
    disableEncryption: env.DISABLE_ENCRYPTION === "true",
  };
  const bucket = value("BUCKET");
  if (bucket) out.bucket = bucket;
  const prefix = value("S3_PREFIX");
  if (prefix) out.s3Prefix = prefix;
  const cluster = value("CLUSTER_NAME");
  if (cluster) out.clusterName = cluster;
  const age = value("AGE_X25519_PUBLIC_KEY");
  if (age) out.ageRecipient = age;
  if (env.ENABLE_COMPRESSION !== undefined) out.enableCompression = env.ENABLE_COMPRESSION === "true";
  return out;
}

/**
 * Where talos-backup would put the backups of `cluster`: `s3://BUCKET/<S3_PREFIX, else the cluster name>`.
 * The cluster name is the resolved one (CLUSTER_NAME, else the talosconfig context), as talos-backup defaults
 * the prefix after resolving it. Undefined without BUCKET.
 */
export function talosBackupStoreDestination(env: Env, cluster: string): string | undefined {
  return talosBackupDestination({ ...env, CLUSTER_NAME: cluster });
}
