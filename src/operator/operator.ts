import type { Logger } from "pino";
import { describeError } from "../errors.ts";
import type { Redactor } from "../observability/redact.ts";
import {
  BACKUP_PLURAL,
  type EtcdBackup,
  type EtcdBackupSchedule,
  SCHEDULE_LABEL,
  SCHEDULE_PLURAL,
} from "./api.ts";
import { BackupController } from "./backup-controller.ts";
import { type ControlPlaneSettings, kubeControlPlaneReader } from "./control-plane-refs/fetch.ts";
import { EventRecorder } from "./events.ts";
import { ClusterGate } from "./fleet/cluster-gate.ts";
import { Informer } from "./informer.ts";
import type { Kube } from "./kube.ts";
import { LeaderElector } from "./leader.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";
import type { ConfigReader } from "./resolve.ts";
import { ScheduleController } from "./schedule-controller.ts";
import type { OperatorStatusBoard } from "./status/board.ts";
import { etcdBackupFeed } from "./status/feeds.ts";
import { serveTalosEtcdBackups } from "./talos-etcd-backup-compat/serve.ts";

export interface OperatorOptions {
  kube: Kube;
  /** Watch (and read Secrets in) this namespace only; all namespaces when undefined. */
  namespace: string | undefined;
  /** Backups run at once. */
  maxConcurrent: number;
  /** Leader election; undefined runs without (one replica only). */
  leaderElection?: {
    namespace: string;
    name: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  identity: string;
  metrics: OperatorMetrics;
  log: Logger;
  talosServiceAccountDir?: string;
  retryBaseMs?: number;
  watchTimeoutSeconds?: number;
  /** Removes secrets from Events and status messages (default: the process's redactor). */
  redactor?: Redactor;
  /** Told when this replica starts and stops leading. */
  onLeading?: (leading: boolean) => void;
  /** How control planes named by `spec.source.controlPlaneRef` are reached (etcd's port for kubeadm). */
  controlPlanes?: ControlPlaneSettings;
  /** Also serve the Talos operator's TalosEtcdBackup and TalosEtcdBackupSchedule (talos-etcd-backup-compat/). */
  talosEtcdBackupCompat?: boolean;
  /** The status page's board: fed from the informer caches and the cluster gate while this replica leads. */
  status?: OperatorStatusBoard;
}

const keyOf = (o: { metadata: { namespace: string; name: string } }) =>
  `${o.metadata.namespace}/${o.metadata.name}`;

/**
 * The operator: (optionally) waits for the leader Lease, then watches EtcdBackups and EtcdBackupSchedules and
 * reconciles them through two work queues (backups limited to `maxConcurrent` at once). Resolves when `signal`
 * aborts, after every backup in flight was aborted (nothing of theirs stays in the store) and the Lease was
 * released; rejects when leadership is lost, so that the process exits and restarts as a candidate.
 */
export async function runOperator(options: OperatorOptions, signal: AbortSignal): Promise<void> {
  const { kube, log } = options;
  const elector = options.leaderElection
    ? new LeaderElector({ kube, identity: options.identity, log, ...options.leaderElection })
    : undefined;
  if (elector) {
    try {
      await elector.acquire(signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }
  const term = new AbortController();
  const onStop = () => term.abort(new Error("operator stopping"));
  signal.addEventListener("abort", onStop, { once: true });
  let lost = false;
  const renewing = elector?.renew(term.signal, () => {
    lost = true;
    term.abort(new Error("lost the leader Lease"));
  });
  options.metrics.leader.set(1);
  options.onLeading?.(true);
  try {
    await runControllers(options, term.signal);
  } finally {
    options.metrics.leader.set(0);
    options.onLeading?.(false);
    signal.removeEventListener("abort", onStop);
    term.abort();
    await renewing;
    if (elector && !lost) await elector.release();
  }
  if (lost) throw new Error("lost the leader Lease; exiting so that a new candidate starts");
}

async function runControllers(options: OperatorOptions, signal: AbortSignal): Promise<void> {
  const { kube, log, metrics } = options;
  const events = new EventRecorder(kube, options.identity, log, undefined, options.redactor);
  const reader: ConfigReader = kube;
  // One cluster never holds every slot; an unreachable one backs off (fleet/cluster-gate.ts).
  const gate = new ClusterGate({
    perCluster: Math.max(1, options.maxConcurrent - 1),
    ...(options.retryBaseMs !== undefined ? { baseMs: options.retryBaseMs } : {}),
  });
  const controlPlanes = {
    reader: kubeControlPlaneReader(kube.config),
    ...(options.controlPlanes ? { settings: options.controlPlanes } : {}),
  };
  const onError = (kind: string) => (key: string, err: unknown, retryInMs: number) =>
    log.warn({ [kind]: key, err: describeError(err), retryInMs }, "reconcile failed; retrying");

  let backupInformer: Informer<EtcdBackup>;
  const backups = new BackupController({
    kube,
    reader,
    events,
    metrics,
    log,
    ...(options.redactor ? { redactor: options.redactor } : {}),
    ...(options.talosServiceAccountDir ? { talosServiceAccountDir: options.talosServiceAccountDir } : {}),
    ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
    controlPlanes,
    gate,
  });
  const schedules = new ScheduleController({
    kube,
    reader,
    events,
    metrics,
    log,
    ...(options.redactor ? { redactor: options.redactor } : {}),
    backups: () => backupInformer.cache.values(),
  });
  const backupQueue = new WorkQueue((k, s) => backups.reconcile(k, s), {
    concurrency: options.maxConcurrent,
    onError: onError("backup"),
  });
  const scheduleQueue = new WorkQueue((k, s) => schedules.reconcile(k, s), {
    concurrency: 2,
    onError: onError("schedule"),
  });
  backupInformer = new Informer<EtcdBackup>({
    kube,
    plural: BACKUP_PLURAL,
    namespace: options.namespace,
    log,
    ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
    onRelist: () => metrics.relists.inc({ resource: BACKUP_PLURAL }),
    onEvent: (type, obj) => {
      const k = keyOf(obj);
      if (type === "deleted" || obj.metadata.deletionTimestamp)
        backups.abort(k, "the EtcdBackup is being deleted");
      if (type !== "deleted") backupQueue.add(k);
      const owner = obj.metadata.labels?.[SCHEDULE_LABEL];
      if (owner) scheduleQueue.add(`${obj.metadata.namespace}/${owner}`);
    },
  });
  const scheduleInformer = new Informer<EtcdBackupSchedule>({
    kube,
    plural: SCHEDULE_PLURAL,
    namespace: options.namespace,
    log,
    ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
    onRelist: () => metrics.relists.inc({ resource: SCHEDULE_PLURAL }),
    // Deletions too: a deleted schedule's revision log (spec.continuous) must stop.
    onEvent: (_type, obj) => scheduleQueue.add(keyOf(obj)),
  });
  log.info(
    { namespace: options.namespace ?? "(all)", maxConcurrent: options.maxConcurrent },
    "operator running",
  );
  // The status page reads the caches and the gate; it never calls the API server per view.
  const detachStatus = [
    options.status?.attach(
      etcdBackupFeed({
        backups: () => backupInformer.cache.values(),
        schedules: () => scheduleInformer.cache.values(),
      }),
    ),
    options.status?.attachGate(gate),
  ];
  const informers = [backupInformer.run(signal), scheduleInformer.run(signal)];
  const compat = options.talosEtcdBackupCompat
    ? serveTalosEtcdBackups(
        {
          kube,
          namespace: options.namespace,
          reader,
          events,
          metrics,
          log,
          maxConcurrent: options.maxConcurrent,
          controlPlanes,
          gate,
          ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
          ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
          ...(options.status ? { status: options.status } : {}),
        },
        signal,
      )
    : Promise.resolve();
  // Schedules read the backup cache: start them only once it is filled.
  await Promise.race([
    backupInformer.synced,
    new Promise((r) => signal.addEventListener("abort", r, { once: true })),
  ]);
  try {
    await Promise.all([...informers, backupQueue.run(signal), scheduleQueue.run(signal), compat]);
  } finally {
    for (const detach of detachStatus) detach?.();
  }
  await schedules.close(); // the revision logs close their open segments
  log.info("operator stopped");
}
