import type { Logger } from "pino";
import { describeError } from "../../errors.ts";
import type { EventRecorder } from "../events.ts";
import type { ClusterGate } from "../fleet/cluster-gate.ts";
import { Informer } from "../informer.ts";
import { Kube } from "../kube.ts";
import type { OperatorMetrics } from "../metrics.ts";
import { WorkQueue } from "../queue.ts";
import type { ConfigReader, ResolveContext } from "../resolve.ts";
import type { OperatorStatusBoard } from "../status/board.ts";
import {
  TALOS_BACKUP_PLURAL,
  TALOS_GROUP,
  TALOS_SCHEDULE_LABEL,
  TALOS_SCHEDULE_PLURAL,
  TALOS_VERSION,
  type TalosEtcdBackup,
  type TalosEtcdBackupSchedule,
} from "./api.ts";
import { TalosBackupController } from "./backup-controller.ts";
import { TalosScheduleController } from "./schedule-controller.ts";
import { talosEtcdBackupFeed } from "./status-feed.ts";

export interface TalosCompatOptions {
  kube: Kube;
  namespace: string | undefined;
  reader: ConfigReader;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  maxConcurrent: number;
  controlPlanes: NonNullable<ResolveContext["controlPlanes"]>;
  gate?: ClusterGate;
  retryBaseMs?: number;
  watchTimeoutSeconds?: number;
  /** The operator's status page: these kinds' rows come from the caches below. */
  status?: OperatorStatusBoard;
}

const keyOf = (o: { metadata: { namespace: string; name: string } }) =>
  `${o.metadata.namespace}/${o.metadata.name}`;

/**
 * Serves TalosEtcdBackup and TalosEtcdBackupSchedule (`--talos-etcd-backup-compat`): watches both kinds and
 * reconciles them through their own work queues, beside the EtcdBackup controllers. Runs until `signal` aborts.
 * Never run it where the Talos operator's own backup controllers run: both would take every backup.
 */
export async function serveTalosEtcdBackups(o: TalosCompatOptions, signal: AbortSignal): Promise<void> {
  const kube = new Kube(o.kube.config, { group: TALOS_GROUP, version: TALOS_VERSION });
  const log = o.log.child({ compat: "talos-operator" });
  const backups = new TalosBackupController({
    kube,
    reader: o.reader,
    events: o.events,
    metrics: o.metrics,
    log,
    controlPlanes: o.controlPlanes,
    ...(o.gate ? { gate: o.gate } : {}),
    ...(o.retryBaseMs !== undefined ? { retryBaseMs: o.retryBaseMs } : {}),
  });
  let backupInformer: Informer<TalosEtcdBackup>;
  const schedules = new TalosScheduleController({
    kube,
    events: o.events,
    log,
    backups,
    cache: () => backupInformer.cache.values(),
  });
  const onError = (kind: string) => (key: string, err: unknown, retryInMs: number) =>
    log.warn({ [kind]: key, err: describeError(err), retryInMs }, "reconcile failed; retrying");
  const backupQueue = new WorkQueue((k, s) => backups.reconcile(k, s), {
    concurrency: o.maxConcurrent,
    onError: onError("talosetcdbackup"),
  });
  const scheduleQueue = new WorkQueue((k) => schedules.reconcile(k), {
    concurrency: 2,
    onError: onError("talosetcdbackupschedule"),
  });
  const watch = o.watchTimeoutSeconds ? { watchTimeoutSeconds: o.watchTimeoutSeconds } : {};
  backupInformer = new Informer<TalosEtcdBackup>({
    kube,
    plural: TALOS_BACKUP_PLURAL,
    namespace: o.namespace,
    log,
    ...watch,
    onEvent: (type, obj) => {
      const k = keyOf(obj);
      if (type === "deleted" || obj.metadata.deletionTimestamp)
        backups.abort(k, "the TalosEtcdBackup is being deleted");
      if (type !== "deleted") backupQueue.add(k);
      const owner = obj.metadata.labels?.[TALOS_SCHEDULE_LABEL];
      if (owner) scheduleQueue.add(`${obj.metadata.namespace}/${owner}`);
    },
  });
  const scheduleInformer = new Informer<TalosEtcdBackupSchedule>({
    kube,
    plural: TALOS_SCHEDULE_PLURAL,
    namespace: o.namespace,
    log,
    ...watch,
    onEvent: (type, obj) => {
      if (type !== "deleted") scheduleQueue.add(keyOf(obj));
    },
  });
  log.info("serving TalosEtcdBackup and TalosEtcdBackupSchedule (talos.alperen.cloud/v1alpha1)");
  const informers = [backupInformer.run(signal), scheduleInformer.run(signal)];
  const detachStatus = o.status?.attach(
    talosEtcdBackupFeed({
      backups: () => backupInformer.cache.values(),
      schedules: () => scheduleInformer.cache.values(),
    }),
  );
  try {
    await Promise.race([
      backupInformer.synced,
      new Promise((r) => signal.addEventListener("abort", r, { once: true })),
    ]);
    await Promise.all([...informers, backupQueue.run(signal), scheduleQueue.run(signal)]);
  } finally {
    detachStatus?.();
  }
}
