import { type Command, Option } from "commander";
import { processRedactor } from "../../observability/redact.ts";
import { addEncryptOptions } from "../encryption-options.ts";
import { addEtcdOptions } from "../etcd-options.ts";
import { addNotifyOptions } from "../notify-options.ts";
import { addObjectLockOptions } from "../object-lock-options.ts";
import { addStoreOptions } from "../store-options.ts";
import { addSourceOption, addTalosOptions } from "../talos-options.ts";
import { addKeepOptions } from "./prune.ts";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function register(program: Command): void {
  const cmd = program
    .command("daemon")
    .description(
      "back up on a cron schedule (save, prune, optional checks) and serve /metrics, /healthz, /readyz and a status page",
    );
  addEtcdOptions(cmd);
  addSourceOption(cmd);
  addTalosOptions(cmd, { nodes: true, longEndpoints: false });
  addStoreOptions(cmd);
  addObjectLockOptions(cmd);
  addEncryptOptions(cmd);
  addKeepOptions(cmd);
  addNotifyOptions(cmd, { stale: true });
  const env = (flag: string) => `ETCD_BACKUP_${flag.toUpperCase().replace(/-/g, "_")}`;
  const opt = (flags: string, what: string, name: string) => new Option(flags, what).env(env(name));
  cmd
    .addOption(
      opt("--config <file>", "YAML file of settings (keys: the flags' names); flags win over it", "config"),
    )
    .addOption(
      opt("--schedule <cron>", "when to back up: cron, optionally with seconds (`0 */6 * * *`)", "schedule"),
    )
    .addOption(opt("--tz <zone>", "IANA time zone of the schedule (default: the process's)", "tz"))
    .addOption(
      opt("--jitter <duration>", "start each run up to this much later, at random (e.g. 30s)", "jitter"),
    )
    .addOption(
      new Option(
        "--cluster <name>",
        "cluster name used in the backup's name (default: the Talos context's name, else etcd)",
      ).env("CLUSTER_NAME"),
    )
    .addOption(new Option("--compress <kind>", "zstd or none (default zstd)").env("ETCD_BACKUP_COMPRESS"))
    .addOption(new Option("--level <n>", "zstd level 1-19 (default 3)").env("ETCD_BACKUP_LEVEL"))
    .addOption(
      new Option(
        "-i, --identity <file>",
        "age identity to read backups back for --verify and test restores (repeatable)",
      )
        .argParser(collect)
        .env("ETCD_BACKUP_IDENTITY"),
    )
    .addOption(
      opt(
        "--incomplete-grace <span>",
        "prune removes incomplete leftovers only once they are this old (default 24h)",
        "incomplete-grace",
      ),
    )
    .addOption(
      opt(
        "--verify",
        "check each new backup: fetch, decrypt (needs --identity), decompress, bbolt structure",
        "verify",
      ),
    )
    .addOption(
      opt(
        "--test-restore-every <n>",
        "every Nth run also restores the new backup into a temporary etcd",
        "test-restore-every",
      ),
    )
    .addOption(
      opt(
        "--continuous",
        "also run the revision log (etcd-backup log) beside the schedule, for restore --at (etcd source only)",
        "continuous",
      ),
    )
    .addOption(
      opt(
        "--segment-interval <duration>",
        "with --continuous: close a log segment this often, the most a crash can lose (default 10s)",
        "segment-interval",
      ),
    )
    .addOption(
      opt(
        "--segment-max-bytes <n>",
        "with --continuous: close a segment earlier at this many plain bytes (default 16 MiB)",
        "segment-max-bytes",
      ),
    )
    .addOption(
      opt(
        "--keep-log-within <span>",
        "revision log retention: every revision restorable only this far back (7d); older points are the kept backups",
        "keep-log-within",
      ),
    )
    .addOption(
      opt(
        "--metrics-addr <addr>",
        "HTTP address for /metrics, /healthz, /readyz and / (default :9090)",
        "metrics-addr",
      ),
    )
    .addOption(
      opt(
        "--ready-max-age <duration>",
        "/readyz fails when the last success is older (default twice the schedule's interval)",
        "ready-max-age",
      ),
    )
    .addOption(
      opt(
        "--shutdown-grace <duration>",
        "on SIGTERM, time the run in flight has to clean up (default 30s)",
        "shutdown-grace",
      ),
    )
    .addOption(
      opt(
        "--retry-backoff <duration>",
        "first retry delay of a failed run, doubling (default 5s)",
        "retry-backoff",
      ),
    )
    .addOption(opt("--retry-backoff-max <duration>", "longest retry delay (default 5m)", "retry-backoff-max"))
    .addOption(
      opt("--log-format <format>", "auto (pretty on a TTY, else JSON), json or pretty", "log-format").choices(
        ["auto", "json", "pretty"],
      ),
    )
    .action(async (flags: Record<string, unknown>) => {
      // Loaded here, not at the top: croner, pino and prom-client cost every other command ~0.3 s at start.
      const { backupJobFromConfig } = await import("../../config/job.ts");
      const { Daemon } = await import("../../daemon/daemon.ts");
      const { createLogger, newInstanceId } = await import("../../observability/logger.ts");
      const { createBackupMetrics } = await import("../../observability/metrics.ts");
      const { daemonConfigFromCommand } = await import("../command-settings.ts");
      const config = await daemonConfigFromCommand(cmd, flags);
      // The environment and the command line were registered by main; the file's password is added here.
      const redactor = processRedactor;
      // A password from the settings file is known only now.
      const source = config.job.source;
      if (source.kind === "etcd" && source.user?.password) redactor.add(source.user.password);
      const instanceId = newInstanceId();
      const root = createLogger({ format: config.logFormat, redactor });
      const log = root.child({ runId: `${instanceId}-0` });
      const job = await backupJobFromConfig(config.job, { warn: (line) => log.warn(line) });
      redactor.add(...job.secrets);
      // A bucket that cannot lock what it was asked to is refused at start, not at the first run.
      await job.store.prepare?.();

      const daemon = new Daemon({
        config,
        job,
        metrics: createBackupMetrics(),
        redactor,
        log,
        runLogger: (runId) => root.child({ runId }),
        instanceId,
      });
      await daemon.start();
      const stopped = new Promise<boolean>((resolve) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          if (++signals > 1) {
            log.error({ signal: sig }, "second signal: exiting at once");
            process.exit(1);
          }
          void daemon.stop(sig).then(resolve);
        };
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);
      });
      const inTime = await stopped;
      process.exitCode = inTime ? 0 : 1;
      // Idle keep-alive sockets of the S3 and gRPC clients must not hold the process once the work has stopped.
      setTimeout(() => process.exit(), 1000).unref();
    });
}

/**
 * The daemon's settings, highest precedence first: flags on the command line, their environment variables, the
 * `--config` file, then the environment's S3 settings (AWS_ENDPOINT_URL...) and talos-backup's (BUCKET...).
 */
