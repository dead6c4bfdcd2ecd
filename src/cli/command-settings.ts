import type { Command } from "commander";
import type { BackupJobConfig, DaemonConfig } from "../config/schema.ts";
import { azureSettingsFromEnv } from "../store/azure-settings.ts";
import { gcsSettingsFromEnv } from "../store/gcs-settings.ts";
import { LEGAL_HOLD_ENV, s3SettingsFromEnv } from "../store/s3-settings.ts";
import { LEGAL_HOLD_ENVS } from "./object-lock-options.ts";

/** `--legal-hold`'s variable (`--s3-legal-hold`'s, LEGAL_HOLD_ENV, is read into the S3 settings). */
const NEUTRAL_LEGAL_HOLD_ENV = LEGAL_HOLD_ENVS[0];

const MiB = 1024 * 1024;

/** Flags whose values are collected into the settings' `s3` object, and the name they take there. */
const S3_FLAGS: Record<string, string> = {
  s3Endpoint: "endpoint",
  s3Region: "region",
  s3PathStyle: "pathStyle",
  s3Ca: "caFile",
  s3InsecureSkipTlsVerify: "insecureSkipTlsVerify",
  s3PartSize: "partSizeMiB",
  s3Concurrency: "concurrency",
  s3Sse: "sse",
  s3SseKmsKeyId: "sseKmsKeyId",
  s3StorageClass: "storageClass",
  s3SdkChecksums: "sdkChecksums",
  s3ObjectLock: "objectLock",
  s3ObjectLockDays: "objectLockDays",
  s3LegalHold: "legalHold",
};

/** Flags whose values are collected into the settings' `azure` object, and the name they take there. */
const AZURE_FLAGS: Record<string, string> = {
  azureAccount: "account",
  azureEndpoint: "endpoint",
  azureAccountKeyFile: "accountKeyFile",
  azureSasTokenFile: "sasTokenFile",
  azureBlockSize: "blockSizeMiB",
  azureConcurrency: "concurrency",
};

/** Flags whose values are collected into the settings' `gcs` object, and the name they take there. */
const GCS_FLAGS: Record<string, string> = {
  gcsEndpoint: "endpoint",
  gcsProject: "project",
  gcsChunkSize: "chunkSizeMiB",
};

/** Flags that are how a command runs, not what the job is. */
const NOT_SETTINGS = new Set(["config", "ageRecipientEnv", "output", "debug"]);

/**
 * Translates a command's flags (with their environment variables, as commander applied them) and an optional
 * settings file into flat settings, keys named after the flags in camelCase, as `parseJobSettings` and
 * `parseDaemonConfig` read them. What wins: a flag or its variable, then the file, then the flag's default.
 * The object-lock flags `--object-lock`, `--object-lock-days`, `--legal-hold` are top-level settings (for every
 * object store); their first names `--s3-object-lock...` land in `s3` as before, and the job parser merges them.
 * S3 settings: the flags, then the file, then AWS_* / talos-backup's S3 variables; Azure's likewise; GCS settings: the
 * flags, then the file, then STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT. `-e` is `talosEndpoints`.
 * Also returns `given`: whether the user gave a setting (flag, variable or file), as opposed to a default.
 */
export function settingsFromCommand(
  cmd: Command,
  flags: Record<string, unknown>,
  options: { file?: Record<string, unknown>; env?: Record<string, string | undefined> } = {},
): { settings: Record<string, unknown>; given: (name: string) => boolean } {
  const env = options.env ?? process.env;
  const file = options.file ?? {};
  const out: Record<string, unknown> = { ...file };
  const fromCommand = (name: string) => {
    const src = cmd.getOptionValueSource(name);
    return (src === "cli" || src === "env") && flags[name] !== "" && flags[name] !== undefined;
  };

  const s3: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s3SettingsFromEnv(env))) {
    if (v === undefined || ["maxAttempts", "retryBaseDelayMs"].includes(k)) continue;
    s3[k === "partSize" ? "partSizeMiB" : k] = k === "partSize" ? (v as number) / MiB : v;
  }
  if (file.s3 && typeof file.s3 === "object") Object.assign(s3, file.s3);
  for (const [flag, key] of Object.entries(S3_FLAGS)) {
    if (!fromCommand(flag)) continue;
    s3[key] = flag === "s3PartSize" ? (flags[flag] as number) / MiB : flags[flag];
  }
  // The variables as text, for the settings parser to read as true/false (commander would take `false` as on).
  if (!fromCommand("s3LegalHold") && env[LEGAL_HOLD_ENV]?.trim()) s3.legalHold = env[LEGAL_HOLD_ENV];
  if (
    !fromCommand("legalHold") &&
    env[NEUTRAL_LEGAL_HOLD_ENV]?.trim() &&
    cmd.options.some((o) => o.long === "--legal-hold")
  )
    out.legalHold = env[NEUTRAL_LEGAL_HOLD_ENV];
  out.s3 = s3;

  // Azure the same way: the flags, then the file, then AZURE_STORAGE_ACCOUNT / ETCD_BACKUP_AZURE_*. Credentials
  // given as values (AZURE_STORAGE_KEY...) are not settings: the job reads them from the environment.
  const azure: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(azureSettingsFromEnv(env))) {
    if (v === undefined) continue;
    azure[k === "blockSize" ? "blockSizeMiB" : k] = k === "blockSize" ? (v as number) / MiB : v;
  }
  if (file.azure && typeof file.azure === "object") Object.assign(azure, file.azure);
  for (const [flag, key] of Object.entries(AZURE_FLAGS)) {
    if (!fromCommand(flag)) continue;
    azure[key] = flag === "azureBlockSize" ? (flags[flag] as number) / MiB : flags[flag];
  }
  out.azure = azure;
  const gcs: Record<string, unknown> = { ...gcsSettingsFromEnv(env) };
  if (file.gcs && typeof file.gcs === "object") Object.assign(gcs, file.gcs);
  for (const [flag, key] of Object.entries(GCS_FLAGS)) if (fromCommand(flag)) gcs[key] = flags[flag];
  out.gcs = gcs;

  const givenNames = new Set(Object.keys(file));
  for (const option of cmd.options) {
    const name = option.attributeName();
    if (NOT_SETTINGS.has(name) || name in S3_FLAGS || name in AZURE_FLAGS || name in GCS_FLAGS) continue;
    const key = name === "e" ? "talosEndpoints" : name;
    if (!fromCommand(name)) {
      // Commander's own defaults (etcd's endpoints, dial timeout) count below the file.
      if (cmd.getOptionValueSource(name) === "default" && out[key] === undefined && flags[name] !== undefined)
        out[key] = flags[name];
      continue;
    }
    out[key] = flags[name];
    givenNames.add(key);
  }
  // --no-encrypt's default (true) is not a choice; a file's `encrypt: false` stands unless the flag was given.
  if (!fromCommand("encrypt")) out.encrypt = file.encrypt ?? true;
  // ETCD_BACKUP_RECIPIENTS: more recipients, comma-separated.
  if (typeof flags.ageRecipientEnv === "string" && flags.ageRecipientEnv.trim()) {
    const listed = flags.ageRecipientEnv.split(",").map((s) => s.trim());
    out.recipient = [...asList(out.recipient), ...listed.filter(Boolean)];
    givenNames.add("recipient");
  }
  return { settings: out, given: (name) => givenNames.has(name) };
}

function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return v.split(",");
  return [];
}

/**
 * `save`'s job configuration from its flags and environment: settings (above), completed (source choice),
 * parsed by the one job parser. Loads the parser on first use (the schema module and croner cost every command at start).
 */
export async function jobConfigFromCommand(
  cmd: Command,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): Promise<BackupJobConfig> {
  const { completeSettings } = await import("../config/settings.ts");
  const { parseJobSettings } = await import("../config/schema.ts");
  const { settings, given } = settingsFromCommand(cmd, flags, { env });
  return parseJobSettings(await completeSettings(settings, given, env), env);
}

/** The daemon's configuration from its flags, environment and `--config` file, through the same path. */
export async function daemonConfigFromCommand(
  cmd: Command,
  flags: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): Promise<DaemonConfig> {
  const { completeSettings } = await import("../config/settings.ts");
  const { parseDaemonConfig } = await import("../config/schema.ts");
  const { readSettingsFile } = await import("../config/file.ts");
  const file = typeof flags.config === "string" ? await readSettingsFile(flags.config) : {};
  const { settings, given } = settingsFromCommand(cmd, flags, { file, env });
  return parseDaemonConfig(await completeSettings(settings, given, env), env);
}
