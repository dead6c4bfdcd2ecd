import { type Command, Option } from "commander";
import { processRedactor } from "../../observability/redact.ts";
import { s3SettingsFromEnv } from "../../store/s3-settings.ts";
import { talosBackupStoreDestination } from "../../talos/backup-env.ts";
import { findTalosconfig, talosconfigCandidates } from "../../talos/config.ts";
import { addEncryptOptions } from "../encryption-options.ts";
import { addEtcdOptions } from "../etcd-options.ts";
import { addStoreOptions } from "../store-options.ts";
import { addSourceOption, addTalosOptions, chooseSource, talosFlagsGiven } from "../talos-options.ts";
import { addKeepOptions } from "./prune.ts";

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
};

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
  addEncryptOptions(cmd);
  addKeepOptions(cmd);
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
      new Option("--cluster <name>", "cluster name used in the backup's name (default etcd)").env(
        "CLUSTER_NAME",
      ),
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
      // Loaded here, not at the top: zod, croner, pino and prom-client cost every other command ~0.3 s at start.
      const { backupJobFromConfig } = await import("../../config/job.ts");
      const { parseDaemonConfig } = await import("../../config/schema.ts");
      const { Daemon } = await import("../../daemon/daemon.ts");
      const { createLogger, newInstanceId } = await import("../../observability/logger.ts");
      const { createBackupMetrics } = await import("../../observability/metrics.ts");
      const settings = await settingsFromCommand(cmd, flags);
      const config = parseDaemonConfig(settings);
      // The environment and the command line were registered by main; the file's password is added here.
      const redactor = processRedactor;
      if (typeof settings.password === "string") redactor.add(settings.password);
      if (typeof settings.user === "string" && settings.user.includes(":")) {
        redactor.add(settings.user.slice(settings.user.indexOf(":") + 1));
      }
      const instanceId = newInstanceId();
      const root = createLogger({ format: config.logFormat, redactor });
      const log = root.child({ runId: `${instanceId}-0` });
      const job = await backupJobFromConfig(config.job, { warn: (line) => log.warn(line) });
      redactor.add(...job.secrets);

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
async function settingsFromCommand(
  cmd: Command,
  flags: Record<string, unknown>,
  envVars: Record<string, string | undefined> = process.env,
): Promise<Record<string, unknown>> {
  const configFile = typeof flags.config === "string" ? flags.config : undefined;
  const { readSettingsFile } = await import("../../config/file.ts");
  const file = configFile ? await readSettingsFile(configFile) : {};
  const out: Record<string, unknown> = { ...file };
  const given = (name: string) => {
    const src = cmd.getOptionValueSource(name);
    return (src === "cli" || src === "env") && flags[name] !== "" && flags[name] !== undefined;
  };

  // S3: environment, then the file, then flags.
  const s3: Record<string, unknown> = {};
  const fromEnv = s3SettingsFromEnv(envVars);
  for (const [k, v] of Object.entries(fromEnv)) {
    if (v === undefined || ["maxAttempts", "retryBaseDelayMs"].includes(k)) continue;
    s3[k === "partSize" ? "partSizeMiB" : k] = k === "partSize" ? (v as number) / MiB : v;
  }
  if (file.s3 && typeof file.s3 === "object") Object.assign(s3, file.s3);
  for (const [flag, key] of Object.entries(S3_FLAGS)) {
    if (!given(flag)) continue;
    s3[key] = flag === "s3PartSize" ? (flags[flag] as number) / MiB : flags[flag];
  }
  out.s3 = s3;

  for (const option of cmd.options) {
    const name = option.attributeName();
    if (name === "config" || name === "ageRecipientEnv" || name in S3_FLAGS) continue;
    if (!given(name)) {
      // Commander's own defaults (etcd's endpoints, dial timeout) count below the file.
      if (
        cmd.getOptionValueSource(name) === "default" &&
        out[name] === undefined &&
        flags[name] !== undefined
      ) {
        out[name] = flags[name];
      }
      continue;
    }
    out[name === "e" ? "talosEndpoints" : name] = flags[name];
  }
  // --no-encrypt's default (true) is not a choice; a file's `encrypt: false` stands unless the flag was given.
  if (!given("encrypt")) out.encrypt = file.encrypt ?? true;
  if (typeof flags.ageRecipientEnv === "string" && flags.ageRecipientEnv.trim()) {
    const fromEnvList = flags.ageRecipientEnv.split(",").map((s) => s.trim());
    out.recipient = [...asList(out.recipient), ...fromEnvList.filter(Boolean)];
  }

  if (out.source === undefined) {
    // As with `save`: talos-backup's BUCKET plus a talosconfig where talosctl looks (~/.talos/config...) is the
    // drop-in case, so the Talos source is chosen without further flags.
    const talosconfig = typeof out.talosconfig === "string" ? out.talosconfig : undefined;
    const talosconfigFound =
      Boolean(envVars.BUCKET?.trim()) &&
      (await findTalosconfig(talosconfigCandidates(talosconfig, envVars))) !== undefined;
    out.source = chooseSource({
      explicit: undefined,
      talosFlags: talosFlagsGiven(flags) || out.talosconfig !== undefined || out.context !== undefined,
      etcdGiven: ["endpoints", "cacert", "cert", "key", "user"].some(
        (k) => given(k) || file[k] !== undefined,
      ),
      env: envVars,
      talosconfigFound,
    });
  }
  if (out.to === undefined) {
    const dest = talosBackupStoreDestination(envVars, typeof out.cluster === "string" ? out.cluster : "etcd");
    if (dest) out.to = dest;
  }
  return out;
}

function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === "string") return v.split(",");
  return [];
}
