import { type Command, Option } from "commander";
import { saveBackup } from "../../backup/save.ts";
import type { BackupJob } from "../../config/job.ts";
import type { BackupJobConfig } from "../../config/schema.ts";
import { describeError } from "../../errors.ts";
import { processRedactor } from "../../observability/redact.ts";
import { formatBytes } from "../../render/units.ts";
import { addEncryptOptions } from "../encryption-options.ts";
import { addEtcdOptions } from "../etcd-options.ts";
import { addNotifyOptions } from "../notify-options.ts";
import { addObjectLockOptions } from "../object-lock-options.ts";
import { ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { addStoreOptions } from "../store-options.ts";
import { addSourceOption, addTalosOptions } from "../talos-options.ts";

type SaveFlags = { output: string };

const warn = (line: string) => process.stderr.write(`${line}\n`);
/** Progress lines of sources that report steps (the kubeconfig source), on stderr as ocne prints them. */
const progressLine = (line: string) => process.stderr.write(`${line}\n`);

/** `save --out FILE|-`: the plain snapshot, as `etcdctl snapshot save` writes it; no store, no manifest. */
async function savePlain(config: BackupJobConfig, out: string): Promise<void> {
  const { sourceFromConfig } = await import("../../config/job.ts");
  const { savePlainSnapshot } = await import("../../backup/plain-snapshot.ts");
  const secrets: string[] = [];
  const { source } = await sourceFromConfig(
    config.source,
    { env: process.env, warn, progress: progressLine },
    secrets,
  );
  processRedactor.add(...secrets.filter((s) => s.length >= 4));
  // On stdout the snapshot is the output: no progress bar, no summary line there.
  const progress = out === "-" ? undefined : new ProgressBar("saving");
  const { signal, dispose } = abortOnSignals();
  try {
    const result = await savePlainSnapshot({
      source,
      out,
      signal,
      ...(progress
        ? { onProgress: (bytes: number, total: number | undefined) => progress.update(bytes, total) }
        : {}),
    });
    progress?.done();
    if (out !== "-") {
      process.stdout.write(
        `saved snapshot to ${result.path}: ${formatBytes(result.bytes)}, sha256 ${result.trailer.sha256} (plain, as etcdctl snapshot save writes it)\n`,
      );
    }
  } finally {
    progress?.done();
    await source.close?.();
    dispose();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command("save")
    .description(
      "stream a snapshot from etcd (or the Talos API, or through a kubeconfig alone), check it, compress, encrypt and store it with a manifest",
    );
  addEtcdOptions(cmd);
  addStoreOptions(cmd);
  addObjectLockOptions(cmd);
  addEncryptOptions(cmd);
  addSourceOption(cmd);
  addTalosOptions(cmd, { nodes: true, longEndpoints: false });
  addNotifyOptions(cmd, { stale: false });
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
    .addOption(
      new Option(
        "--kubeconfig <file>",
        "back up a kubeadm-style cluster's etcd with a kubeconfig alone: a helper pod on etcd's node takes the snapshot (--context picks the kubeconfig's context)",
      ).helpGroup("Kubernetes:"),
    )
    .addOption(
      new Option(
        "--image <ref>",
        "the helper pod's image for --kubeconfig (default: this release's etcd-backup image)",
      ).helpGroup("Kubernetes:"),
    )
    .option(
      "--out <file>",
      "write the plain snapshot to FILE (- for stdout) as etcdctl snapshot save does, instead of a backup with --to",
    )
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
      const { jobConfigFromCommand } = await import("../command-settings.ts");
      const config = await jobConfigFromCommand(cmd, flags as unknown as Record<string, unknown>);
      if (config.output !== undefined) {
        await savePlain(config, config.output);
        return;
      }
      const { backupJobFromConfig } = await import("../../config/job.ts");
      const job = await backupJobFromConfig(config, { env: process.env, warn, progress: progressLine });
      processRedactor.add(...job.secrets);
      const { source, store } = job;
      // Before etcd is read: a bucket that cannot lock is refused at once when locking was asked for.
      await store.prepare?.();
      const notifier = await saveNotifier(job);
      const progress = new ProgressBar("saving");
      const { signal, dispose } = abortOnSignals();
      const started = performance.now();
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
        await notifier?.notify(
          {
            event: "success",
            origin: "save",
            cluster: job.cluster,
            time: new Date().toISOString(),
            backup: result.key,
            store: store.location,
            durationSeconds: m.durationSeconds,
            sizeBytes: m.sizes.stored,
            ...(m.etcd?.revision !== undefined ? { revision: m.etcd.revision } : {}),
          },
          AbortSignal.timeout(NOTIFY_DEADLINE_MS),
        );
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
      } catch (err) {
        progress.done();
        // Sent even when a signal stopped the save (a CronJob's pod killed mid-run is a failure to hear of);
        // the notification has its own deadline. It never changes the exit code or the error line.
        await notifier?.notify(
          {
            event: "failure",
            origin: "save",
            cluster: job.cluster,
            time: new Date().toISOString(),
            store: store.location,
            error: describeError(err),
            durationSeconds: Math.round(performance.now() - started) / 1000,
            attempts: 1,
          },
          AbortSignal.timeout(NOTIFY_DEADLINE_MS),
        );
        throw err;
      } finally {
        progress.done();
        await source.close?.();
        dispose();
      }
    });
}

/** How long `save` waits for its notifications (retries included) before exiting. */
const NOTIFY_DEADLINE_MS = 60_000;

/** The notifier of `save`'s --notify receivers, or undefined without any; failures are warnings on stderr. */
async function saveNotifier(job: BackupJob) {
  if (job.notify.targets.length === 0) return undefined;
  const { Notifier } = await import("../../notify/sender.ts");
  return new Notifier({
    targets: job.notify.targets,
    on: job.notify.on,
    redact: (text) => processRedactor.redact(text),
    report: (d) => {
      if (!d.ok) process.stderr.write(`etcd-backup: warning: ${d.error}\n`);
    },
  });
}
