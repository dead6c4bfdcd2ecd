import type { Server } from "node:http";
import { type Command, Option } from "commander";
import { saveBackup } from "../../backup/save.ts";
import { checkClusterName } from "../../catalog/names.ts";
import { parseListenAddress } from "../../config/schema.ts";
import { createHttpServer, listen } from "../../daemon/http.ts";
import { durationSetting } from "../../duration.ts";
import { UsageError } from "../../errors.ts";
import { createLogMetrics, type LogMetrics } from "../../point-in-time/log-metrics.ts";
import {
  DEFAULT_SEGMENT_INTERVAL_MS,
  DEFAULT_SEGMENT_MAX_BYTES,
  runLog,
} from "../../point-in-time/logger.ts";
import { escapeHtml } from "../../render/html.ts";
import { addEncryptOptions, type EncryptFlags, encryptionPlanFromFlags } from "../encryption-options.ts";
import { addEtcdOptions, type EtcdFlags, etcdSourceFromFlags } from "../etcd-options.ts";
import { addObjectLockOptions } from "../object-lock-options.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";

/** /metrics, /healthz, /readyz (ready while the closed log is at most three intervals old) and a status page. */
async function serveLogStatus(
  metrics: LogMetrics,
  address: { host: string | undefined; port: number },
  cluster: string,
  intervalMs: number,
): Promise<Server> {
  const server = createHttpServer({
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
    notReady: () => {
      const s = metrics.snapshot();
      if (!s) return "no segment closed yet";
      const age = Date.now() - s.coveredUntilMs;
      return age > 3 * intervalMs + 5000 ? `the closed log is ${Math.round(age / 1000)}s old` : null;
    },
    statusPage: () => {
      const s = metrics.snapshot();
      const window = s
        ? `recoverable from ${escapeHtml(s.chainStart)} (revision ${s.base}) to ${new Date(s.coveredUntilMs).toISOString()} (revision ${s.revision})`
        : "nothing closed yet";
      return `<!doctype html><title>etcd-backup log</title><h1>etcd-backup log: ${escapeHtml(cluster)}</h1><p>Point-in-time window of the current chain: ${window}.</p><p><a href="/metrics">metrics</a></p>`;
    },
  });
  const bound = await listen(server, address.host, address.port);
  process.stderr.write(`log: serving /metrics and the status page on ${bound.address}:${bound.port}\n`);
  return server;
}

type LogFlags = EtcdFlags &
  EncryptFlags &
  StoreFlags & {
    cluster: string;
    segmentInterval: string;
    segmentMaxBytes: string;
    source: string;
    metricsAddr?: string;
  };

/** Why the log cannot read a Talos node: said the same way in the error and in the docs. */
const TALOS_HAS_NO_WATCH =
  "Talos' apid exposes etcd snapshots but no watch, so the revision log cannot read etcd through the Talos API";

export function register(program: Command): void {
  const cmd = program
    .command("log")
    .description(
      "record every etcd revision into closed, encrypted log segments beside the full backups, for `restore --at`",
    );
  addEtcdOptions(cmd);
  addStoreOptions(cmd);
  addObjectLockOptions(cmd);
  addEncryptOptions(cmd);
  cmd
    .addOption(
      new Option("--cluster <name>", "cluster name, as in the backups' names")
        .env("CLUSTER_NAME")
        .default("etcd"),
    )
    .addOption(
      new Option("--segment-interval <duration>", "close a segment this often: the most a crash can lose")
        .env("ETCD_BACKUP_SEGMENT_INTERVAL")
        .default(`${DEFAULT_SEGMENT_INTERVAL_MS / 1000}s`),
    )
    .addOption(
      new Option(
        "--segment-max-bytes <n>",
        "close a segment earlier once it holds this many plain bytes",
      ).default(String(DEFAULT_SEGMENT_MAX_BYTES)),
    )
    .addOption(new Option("--source <kind>", "etcd (the only source the log can watch)").default("etcd"))
    .addOption(
      new Option(
        "--metrics-addr <addr>",
        "serve /metrics, /healthz, /readyz and a status page here (host:port)",
      ).env("ETCD_BACKUP_METRICS_ADDR"),
    )
    .action(async (flags: LogFlags) => {
      if (flags.source !== "etcd") {
        throw new UsageError(
          `the revision log cannot use --source ${flags.source}: ${TALOS_HAS_NO_WATCH}`,
          "point --endpoints at etcd's client port (on Talos: expose etcd to the log with a client certificate)",
        );
      }
      checkClusterName(flags.cluster, "--cluster");
      const interval = durationSetting("--segment-interval", flags.segmentInterval);
      if (interval < 100) {
        throw new UsageError(
          `--segment-interval ${flags.segmentInterval} is not a duration of 100ms or more`,
          "use e.g. 10s",
        );
      }
      const maxBytes = Number(flags.segmentMaxBytes);
      if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) {
        throw new UsageError(`--segment-max-bytes ${flags.segmentMaxBytes} is not a number of bytes >= 1024`);
      }
      const listen = flags.metricsAddr !== undefined ? parseListenAddress(flags.metricsAddr) : undefined;
      if (listen === null) {
        throw new UsageError(
          `--metrics-addr ${flags.metricsAddr} is not host:port`,
          "use e.g. :9090 or 127.0.0.1:9090",
        );
      }
      const warn = (line: string) => process.stderr.write(`${line}\n`);
      const encryption = await encryptionPlanFromFlags(flags);
      const store = storeFromFlags(flags);
      await store.prepare?.();
      const source = etcdSourceFromFlags(flags, warn);
      const { signal, dispose } = abortOnSignals();
      const metrics = createLogMetrics();
      const server = listen ? await serveLogStatus(metrics, listen, flags.cluster, interval) : undefined;
      try {
        await runLog({
          metrics,
          source: source.options,
          store,
          cluster: flags.cluster,
          encryption,
          segmentIntervalMs: interval,
          segmentMaxBytes: maxBytes,
          signal,
          fullBackup: async (s) => {
            const result = await saveBackup({
              source,
              store,
              cluster: flags.cluster,
              compression: "zstd",
              encryption,
              signal: s,
            });
            const revision = result.manifest.etcd?.revision;
            if (!revision) throw new Error(`full backup ${result.key} has no revision in its manifest`);
            warn(`log: full backup ${result.key} at revision ${revision}`);
            return { key: result.key, revision, created: result.manifest.created };
          },
          onLine: warn,
          onSegment: (st) =>
            warn(
              `log: segment ${st.first}-${st.last} closed (${st.revisions} revisions, ${st.events} events, ${st.storedBytes} bytes stored)`,
            ),
        });
      } finally {
        server?.close();
        dispose();
      }
    });
}
