import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import { hostname } from "node:os";
import { type Command, Option } from "commander";
import { type ListenAddress, listenAddressSetting } from "../../config/listen-address.ts";
import { durationSetting } from "../../duration.ts";
import { UsageError } from "../../errors.ts";
import { processRedactor, type Redactor } from "../../observability/redact.ts";
import type { OperatorMetrics } from "../../operator/metrics.ts";
import type { OperatorStatusBoard } from "../../operator/status/board.ts";
import { abortOnSignals } from "../signals.ts";

interface OperatorFlags {
  kubeconfig?: string;
  namespace?: string;
  metricsAddr: string;
  leaderElect: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  maxConcurrent: string;
  logFormat: "auto" | "json" | "pretty";
  talosServiceAccountDir?: string;
  retryBase: string;
  watchTimeout: string;
  talosEtcdBackupCompat: boolean;
  kubeadmEtcdPort: string;
}

/** The operator's timers (Lease timing, retries, the watch timeout): positive and within what a timer holds. */
function duration(text: string, flag: string): number {
  return durationSetting(flag, text);
}

/** `--metrics-addr`: `:8080`, `0.0.0.0:8080`, `127.0.0.1:0`; empty or `0` turns the endpoint off. */
function metricsAddress(addr: string): ListenAddress | null {
  if (addr.trim() === "" || addr.trim() === "0") return null;
  return listenAddressSetting("--metrics-addr", addr);
}

export function register(program: Command): void {
  program
    .command("operator")
    .description("run the Kubernetes operator for EtcdBackup and EtcdBackupSchedule resources")
    .addOption(
      new Option("--kubeconfig <file>", "kubeconfig (default: in-cluster, then KUBECONFIG, ~/.kube/config)"),
    )
    .addOption(
      new Option("--namespace <ns>", "watch this namespace only (default: all)").env("WATCH_NAMESPACE"),
    )
    .addOption(
      new Option(
        "--metrics-addr <addr>",
        "serve /metrics, /healthz, /readyz and the status page (/, /status.json) here (empty: off)",
      ).default(":8080"),
    )
    .addOption(
      new Option("--leader-elect", "elect a leader with a Lease (run several replicas)").default(false),
    )
    .addOption(
      new Option(
        "--leader-election-namespace <ns>",
        "namespace of the Lease (default: --namespace or the pod's)",
      ).env("POD_NAMESPACE"),
    )
    .addOption(new Option("--leader-election-id <name>", "name of the Lease").default("etcd-backup-operator"))
    .addOption(new Option("--lease-duration <d>", "how long a Lease lasts without renewal").default("15s"))
    .addOption(
      new Option("--renew-deadline <d>", "how long a leader tries to renew before giving up").default("10s"),
    )
    .addOption(new Option("--retry-period <d>", "time between Lease tries").default("2s"))
    .addOption(new Option("--max-concurrent <n>", "backups running at once").default("2"))
    .addOption(
      new Option("--log-format <f>", "auto, json or pretty")
        .choices(["auto", "json", "pretty"])
        .default("auto"),
    )
    .addOption(new Option("--talos-service-account-dir <dir>").hideHelp())
    .addOption(
      new Option("--retry-base <d>", "first retry delay of a failed backup").default("10s").hideHelp(),
    )
    .addOption(new Option("--watch-timeout <d>").default("5m").hideHelp())
    .addOption(
      new Option(
        "--talos-etcd-backup-compat",
        "also serve the Talos operator's TalosEtcdBackup and TalosEtcdBackupSchedule (talos.alperen.cloud); never beside that operator's own backup controllers",
      ).default(false),
    )
    .addOption(
      new Option("--kubeadm-etcd-port <port>", "etcd's client port on KubeadmControlPlane nodes").default(
        "2379",
      ),
    )
    .action(async (flags: OperatorFlags) => {
      const maxConcurrent = Number(flags.maxConcurrent);
      if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1 || maxConcurrent > 64) {
        throw new UsageError(`--max-concurrent ${flags.maxConcurrent} is not 1 to 64`);
      }
      const leaseDurationMs = duration(flags.leaseDuration, "--lease-duration");
      const renewDeadlineMs = duration(flags.renewDeadline, "--renew-deadline");
      const retryPeriodMs = duration(flags.retryPeriod, "--retry-period");
      const retryBaseMs = duration(flags.retryBase, "--retry-base");
      const watchTimeoutMs = duration(flags.watchTimeout, "--watch-timeout");
      if (renewDeadlineMs >= leaseDurationMs) {
        throw new UsageError("--renew-deadline must be shorter than --lease-duration");
      }
      const etcdPort = Number(flags.kubeadmEtcdPort);
      if (!Number.isInteger(etcdPort) || etcdPort < 1 || etcdPort > 65535) {
        throw new UsageError(`--kubeadm-etcd-port ${flags.kubeadmEtcdPort} is not a port (1 to 65535)`);
      }
      const addr = metricsAddress(flags.metricsAddr);
      // The environment and the command line were registered by main; Secrets' values are added as they are read.
      const redactor = processRedactor;
      // Loaded here, not at the top: @kubernetes/client-node costs every other command ~1 s of CPU and ~50 MiB,
      // pino and prom-client ~0.1 s each.
      const { createLogger } = await import("../../observability/logger.ts");
      const log = createLogger({ redactor, format: flags.logFormat, out: process.stderr });
      const { Kube, loadKubeConfig } = await import("../../operator/kube.ts");
      const { OperatorMetrics } = await import("../../operator/metrics.ts");
      const { runOperator } = await import("../../operator/operator.ts");
      const kube = new Kube(loadKubeConfig(flags.kubeconfig));
      // Values read from Secrets never reach a log line, even by accident.
      const readSecret = kube.secret.bind(kube);
      kube.secret = async (namespace, name) => {
        const data = await readSecret(namespace, name);
        for (const v of Object.values(data ?? {})) redactor.add(v.toString("utf8"));
        return data;
      };
      const metrics = new OperatorMetrics();
      const identity = `${hostname()}_${randomBytes(4).toString("hex")}`;
      let ready = false;
      const { OperatorStatusBoard } = await import("../../operator/status/board.ts");
      const board = new OperatorStatusBoard(redactor);
      const server = addr ? await serveMetrics(addr, metrics, () => ready, redactor, board) : undefined;
      if (server) log.info({ addr: server.address() }, "metrics listening");
      const { signal, dispose } = abortOnSignals();
      try {
        await runOperator(
          {
            kube,
            namespace: flags.namespace || undefined,
            maxConcurrent,
            ...(flags.leaderElect
              ? {
                  leaderElection: {
                    namespace: flags.leaderElectionNamespace || flags.namespace || "default",
                    name: flags.leaderElectionId,
                    leaseDurationMs,
                    renewDeadlineMs,
                    retryPeriodMs,
                  },
                }
              : {}),
            identity,
            metrics,
            log,
            redactor,
            ...(flags.talosServiceAccountDir ? { talosServiceAccountDir: flags.talosServiceAccountDir } : {}),
            retryBaseMs,
            watchTimeoutSeconds: Math.max(1, Math.round(watchTimeoutMs / 1000)),
            controlPlanes: { etcdPort, dialTimeoutMs: 10_000 },
            talosEtcdBackupCompat: flags.talosEtcdBackupCompat,
            status: board,
            onLeading: (leading) => {
              ready = leading;
            },
          },
          signal,
        );
      } finally {
        dispose();
        server?.close();
        server?.closeAllConnections();
      }
    });
}

async function serveMetrics(
  addr: ListenAddress,
  metrics: OperatorMetrics,
  leading: () => boolean,
  redactor: Redactor,
  board: OperatorStatusBoard,
): Promise<Server> {
  // node:http costs every command ~70 ms to import (it pulls in undici): loaded here, when serving.
  const { createHttpServer, listen } = await import("../../daemon/http.ts");
  const { operatorHttpHandlers } = await import("../../operator/status/http-handlers.ts");
  const server = createHttpServer(operatorHttpHandlers({ metrics, leading, redactor, board }));
  await listen(server, addr.host, addr.port);
  return server;
}
