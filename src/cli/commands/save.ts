import { type Command, Option } from "commander";
import { saveBackup } from "../../backup/save.ts";
import { processRedactor } from "../../observability/redact.ts";
import { formatBytes } from "../../render/units.ts";
import { addEncryptOptions } from "../encryption-options.ts";
import { addEtcdOptions } from "../etcd-options.ts";
import { ProgressBar } from "../progress.ts";
import { addObjectLockOptions } from "../s3-options.ts";
import { abortOnSignals } from "../signals.ts";
import { addStoreOptions } from "../store-options.ts";
import { addSourceOption, addTalosOptions } from "../talos-options.ts";

type SaveFlags = { output: string };

/**
 * The job `save` runs, from its flags and their environment variables, through the same settings, parser and
 * builder as the daemon's (config/settings.ts, config/schema.ts, config/job.ts).
 */
export async function jobFromCommand(cmd: Command, flags: Record<string, unknown>, env = process.env) {
  const { jobConfigFromCommand } = await import("../command-settings.ts");
  const { backupJobFromConfig } = await import("../../config/job.ts");
  const config = await jobConfigFromCommand(cmd, flags, env);
  const job = await backupJobFromConfig(config, { env, warn: (line) => process.stderr.write(`${line}\n`) });
  processRedactor.add(...job.secrets);
  return job;
}

export function register(program: Command): void {
  const cmd = program
    .command("save")
    .description(
      "stream a snapshot from etcd (or the Talos API), check it, compress, encrypt and store it with a manifest",
    );
  addEtcdOptions(cmd);
  addStoreOptions(cmd);
  addObjectLockOptions(cmd);
  addEncryptOptions(cmd);
  addSourceOption(cmd);
  addTalosOptions(cmd, { nodes: true, longEndpoints: false });
  cmd
    .addOption(
      new Option(
        "--cluster <name>",
        "cluster name used in the backup's name (default: the Talos context's name, else etcd)",
      ).env("CLUSTER_NAME"),
    )
    .addOption(
      new Option("--compress <kind>", "zstd or none (default zstd)")
        .choices(["zstd", "none"])
        .env("ETCD_BACKUP_COMPRESS"),
    )
    .addOption(new Option("--level <n>", "zstd level 1-19 (default 3)").env("ETCD_BACKUP_LEVEL"))
    .option(
      "--from-file <snapshot>",
      "store an existing snapshot file (etcdctl snapshot save output) instead of reading etcd",
    )
    .addOption(
      new Option("-o, --output <format>", "text or json (the manifest)")
        .choices(["text", "json"])
        .default("text"),
    )
    .action(async (flags: SaveFlags) => {
      // The same path as the daemon's: flags and environment -> settings -> one validated job.
      const job = await jobFromCommand(cmd, flags as unknown as Record<string, unknown>);
      const { source, store } = job;
      // Before etcd is read: a bucket that cannot lock is refused at once when locking was asked for.
      await store.prepare?.();
      const progress = new ProgressBar("saving");
      const { signal, dispose } = abortOnSignals();
      try {
        const result = await saveBackup({
          source,
          store,
          cluster: job.cluster,
          compression: job.compression,
          ...(job.level !== undefined ? { level: job.level } : {}),
          encryption: job.encryption,
          signal,
          onProgress: (bytes, total) => progress.update(bytes, total),
        });
        progress.done();
        const m = result.manifest;
        if (flags.output === "json") {
          process.stdout.write(
            `${JSON.stringify({ key: result.key, location: store.location, manifest: m }, null, 2)}\n`,
          );
        } else {
          process.stdout.write(
            `saved ${result.key} to ${store.location}: ${formatBytes(m.sizes.plain)} snapshot, ${formatBytes(m.sizes.stored)} stored` +
              ` (${m.compression.kind}, ${m.encryption.kind === "age" ? "age-encrypted" : "NOT encrypted"}) in ${m.durationSeconds.toFixed(1)}s\n`,
          );
        }
      } finally {
        progress.done();
        dispose();
      }
    });
}
