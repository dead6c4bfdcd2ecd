import { talosBackupDestination } from "../store/s3-settings.ts";

/*
 * talos-backup's environment variables, in this one module: what they are (`readTalosBackupEnv`), what they
 * mean for our settings (`applyTalosBackupEnv`) and where its backups go (`talosBackupStoreDestination`). Its
 * S3 variables (CUSTOM_S3_ENDPOINT, USE_PATH_STYLE) are S3 settings and read with them (s3SettingsFromEnv).
 */

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

/**
 * talos-backup's switches mean for any front end what they mean for talos-backup, where the settings leave
 * the choice open (settings are flat, named after the CLI flags):
 * - `DISABLE_ENCRYPTION=true` is `--no-encrypt`; otherwise `AGE_X25519_PUBLIC_KEY` is one more recipient;
 * - when no compression was given: zstd for `ENABLE_COMPRESSION=true`, none when it is set to anything else or
 *   when `BUCKET` is set (talos-backup's default), else ours (zstd).
 * The destination (`BUCKET`, `S3_PREFIX`) depends on the resolved cluster name: see `talosBackupStoreDestination`.
 * Returns new settings; `settings` is not changed.
 */
export function applyTalosBackupEnv(settings: Record<string, unknown>, env: Env): Record<string, unknown> {
  const tb = readTalosBackupEnv(env);
  const out: Record<string, unknown> = { ...settings };
  if (out.compress === undefined || out.compress === "") {
    if (tb.enableCompression !== undefined) out.compress = tb.enableCompression ? "zstd" : "none";
    else if (tb.present) out.compress = "none";
  }
  if (tb.disableEncryption) out.encrypt = false;
  else if (tb.ageRecipient) {
    const r = out.recipient;
    const list = Array.isArray(r) ? r.map(String) : typeof r === "string" && r.trim() ? [r] : [];
    out.recipient = [...list, tb.ageRecipient];
  }
  return out;
}
