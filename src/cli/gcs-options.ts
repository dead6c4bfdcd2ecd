import { type Command, InvalidArgumentError, Option } from "commander";
import { type GcsSettings, gcsSettingsFromEnv } from "../store/gcs-settings.ts";

const MiB = 1024 * 1024;

/** The values commander collects for the options `addGcsOptions` adds. */
export interface GcsOptionValues {
  gcsEndpoint?: string;
  gcsProject?: string;
  gcsChunkSize?: number;
}

/** `--gcs-chunk-size` in MiB: a multiple of 0.25 (256 KiB) from 0.25 to 512; a bad value is a usage error. */
export function parseChunkSizeMiB(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.25 || n > 512 || !Number.isInteger(n * 4))
    throw new InvalidArgumentError("must be a multiple of 0.25 MiB from 0.25 to 512");
  return n;
}

/** Adds the Google Cloud Storage flags (for gs:// destinations) to a command and returns it. */
export function addGcsOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--gcs-endpoint <url>",
        "Google Cloud Storage JSON API endpoint, for emulators and private endpoints (env STORAGE_EMULATOR_HOST)",
      )
        .env("ETCD_BACKUP_GCS_ENDPOINT")
        .helpGroup("Google Cloud Storage:"),
    )
    .addOption(
      new Option(
        "--gcs-project <id>",
        "project (env GOOGLE_CLOUD_PROJECT; default: the credentials')",
      ).helpGroup("Google Cloud Storage:"),
    )
    .addOption(
      new Option("--gcs-chunk-size <MiB>", "resumable upload chunk, a multiple of 0.25 (default 8)")
        .env("ETCD_BACKUP_GCS_CHUNK_SIZE")
        .argParser(parseChunkSizeMiB)
        .helpGroup("Google Cloud Storage:"),
    );
}

/** The GCS settings the flags give, over those of the environment (`gcsSettingsFromEnv`). */
export function gcsSettingsFromOptions(
  opts: GcsOptionValues,
  env: NodeJS.ProcessEnv = process.env,
): GcsSettings {
  const out = gcsSettingsFromEnv(env);
  if (opts.gcsEndpoint) out.endpoint = opts.gcsEndpoint;
  if (opts.gcsProject) out.project = opts.gcsProject;
  if (opts.gcsChunkSize !== undefined) out.chunkSize = Math.round(opts.gcsChunkSize * MiB);
  return out;
}
