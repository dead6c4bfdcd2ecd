import type { Logger } from "pino";
import { saveBackup } from "../backup/save.ts";
import { describeError } from "../errors.ts";
import { processRedactor, type Redactor } from "../observability/redact.ts";
import { AzureBlobStore } from "../store/azure-blob.ts";
import { retentionLabel, type Store } from "../store/store.ts";
import {
  BACKUP_PLURAL,
  DELETE_FINALIZER,
  type DestinationSpec,
  type EtcdBackup,
  type EtcdBackupStatus,
  type MergePatch,
  Reason,
} from "./api.ts";
import {
  type BackupAction,
  type BackupDecision,
  type BackupSettings,
  classifyFailure,
  clusterOf,
  DEFAULT_BACKUP_SETTINGS,
  decideAfterRun,
  decideBackup,
  type RunOutcome,
} from "./backup-decision.ts";
import { redactConditions } from "./conditions.ts";
import type { EventRecorder } from "./events.ts";
import { type ClusterGate, type RunEnd, runEnd } from "./fleet/cluster-gate.ts";
import { isConflict, isNotFound, type Kube } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import {
  type ConfigReader,
  type OperatorStore,
  type ResolveContext,
  reasonOf,
  resolveJob,
  resolveStore,
  storeRoot,
} from "./resolve.ts";

export interface BackupControllerOptions {
  kube: Kube;
  reader: ConfigReader;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  talosServiceAccountDir?: string;
  /** Removes secrets from status messages (default: the process's redactor). */
  redactor?: Redactor;
  /** First retry delay after a failed attempt; doubles per attempt, capped at 10 minutes. */
  retryBaseMs?: number;
  /** Reads what `spec.source.controlPlaneRef` names. */
  controlPlanes?: ResolveContext["controlPlanes"];
  /** Per-cluster slot limit and backoff, shared by every controller that runs backups. */
  gate?: ClusterGate;
}

type SaveAction = Extract<BackupAction, { kind: "save" }>;

/**
 * Reconciles one EtcdBackup: runs it once (claiming it with a conditional status write so that two replicas can
 * never both start it), retries failed attempts with exponential backoff up to `spec.backoffLimit`, and, for
 * `deletionPolicy: Delete`, holds a finalizer until the stored object and manifest are deleted. What to do is
 * decided by `decideBackup` and `decideAfterRun` (backup-decision.ts); this class observes and applies.
 */
export class BackupController {
  private readonly o: BackupControllerOptions;
  private readonly settings: BackupSettings;
  /** Backups running in this process, by `namespace/name`: aborted when their object goes. */
  private readonly running = new Map<string, AbortController>();

  constructor(options: BackupControllerOptions) {
    this.o = options;
    this.settings =
      options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : DEFAULT_BACKUP_SETTINGS;
  }

  /** Aborts the run of a backup whose object was deleted. */
  abort(key: string, reason: string): void {
    this.running.get(key)?.abort(new Error(reason));
  }

  /** Returns the delay after which to look again, if any. */
  async reconcile(key: string, signal: AbortSignal): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let backup: EtcdBackup;
    try {
      backup = await this.o.kube.get<EtcdBackup>(BACKUP_PLURAL, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const observed = { backup, now: new Date(), running: this.running.has(key), redact: this.redact };
    const decision = decideBackup(observed, this.settings);
    // A cluster at its slot limit, or backing off after it was unreachable, waits; the others do not (fleet/).
    const save = decision.actions.find((a) => a.kind === "save");
    const gate = this.o.gate;
    if (!save || !gate) return await this.apply(backup, decision, signal);
    const wait = gate.waitMs(save.cluster, observed.now);
    if (wait > 0) return wait;
    gate.started(save.cluster);
    const run: { ended: RunEnd } = { ended: "other" };
    try {
      return await this.apply(backup, decision, signal, undefined, run);
    } finally {
      gate.finished(save.cluster, run.ended, new Date());
    }
  }

  private readonly redact = (text: string): string => (this.o.redactor ?? processRedactor).redact(text);

  /**
   * Applies a decision's actions in order, keeping the object as last written, then counts the attempt it ends;
   * returns when to look again. A run's outcome is decided on and applied the same way.
   */
  private async apply(
    obj: EtcdBackup,
    decision: BackupDecision,
    signal: AbortSignal,
    cluster = clusterOf(obj),
    run?: { ended: RunEnd },
  ): Promise<number | undefined> {
    let current = obj;
    for (const action of decision.actions) {
      switch (action.kind) {
        case "abortRun":
          this.abort(keyOf(current), action.reason);
          break;
        case "setFinalizers":
          try {
            current = await this.setFinalizers(current, action.finalizers);
          } catch (err) {
            if (isNotFound(err)) return undefined; // gone meanwhile: nothing left to do
            throw err;
          }
          break;
        case "deleteStored":
          await this.deleteStored(current, action.key, action.manifestKey);
          break;
        case "writeStatus":
          try {
            current = await this.writeStatus(current, action.status, action.conditional === true);
          } catch (err) {
            if (action.bestEffort) break;
            if (action.conditional && isConflict(err)) return 0; // changed meanwhile, or another replica has it
            throw err;
          }
          break;
        case "event":
          await this.o.events.record(current, action.type, action.reason, action.message);
          break;
        case "save": {
          const outcome = await this.save(current, action, signal);
          if (run) run.ended = runEnd(outcome);
          const next = decideAfterRun(
            { backup: current, attempts: action.attempts, outcome, now: new Date() },
            this.settings,
          );
          return await this.apply(current, next, signal, action.cluster);
        }
      }
    }
    this.count(current, decision, cluster);
    return decision.requeueAfterMs;
  }

  /** The attempt's metric and log line, when the decision ends one. */
  private count(obj: EtcdBackup, decision: BackupDecision, cluster: string): void {
    if (!decision.result) return;
    this.o.metrics.backups.inc({ namespace: obj.metadata.namespace, cluster, result: decision.result });
    const log = this.o.log.child({ backup: keyOf(obj) });
    if (decision.result === "aborted") log.info("backup aborted: operator stopping");
    const f = decision.failure;
    if (f) log.warn({ reason: f.reason, err: f.message, retry: f.retry }, "backup failed");
  }

  private async setFinalizers(obj: EtcdBackup, finalizers: string[]): Promise<EtcdBackup> {
    const { namespace, name, resourceVersion } = obj.metadata;
    return await this.o.kube.patch<EtcdBackup>(BACKUP_PLURAL, namespace, name, {
      metadata: { finalizers, resourceVersion },
    });
  }

  /** Merge-patches the status; `conditional` makes the API server refuse (409) if the object changed. */
  private async writeStatus(
    obj: EtcdBackup,
    status: MergePatch<EtcdBackupStatus>,
    conditional: boolean,
  ): Promise<EtcdBackup> {
    const { namespace, name, resourceVersion } = obj.metadata;
    if (status.conditions)
      status = { ...status, conditions: redactConditions(status.conditions, this.redact) };
    const body = conditional ? { metadata: { resourceVersion }, status } : { status };
    return await this.o.kube.patch<EtcdBackup>(BACKUP_PLURAL, namespace, name, body, true);
  }

  private context(namespace: string, log: Logger): ResolveContext {
    return {
      namespace,
      reader: this.o.reader,
      ...(this.o.talosServiceAccountDir ? { talosServiceAccountDir: this.o.talosServiceAccountDir } : {}),
      ...(this.o.controlPlanes ? { controlPlanes: this.o.controlPlanes } : {}),
      warn: (line: string) => log.warn(line),
    };
  }

  /** Runs the backup, abortable by the object's deletion and by `parent`; never throws. */
  private async save(obj: EtcdBackup, action: SaveAction, parent: AbortSignal): Promise<RunOutcome> {
    const { namespace } = obj.metadata;
    const key = keyOf(obj);
    const log = this.o.log.child({ backup: key });
    const controller = new AbortController();
    const onParentAbort = () => controller.abort(parent.reason);
    parent.addEventListener("abort", onParentAbort, { once: true });
    this.running.set(key, controller);
    this.o.metrics.inFlight.inc();
    const started = performance.now();
    try {
      const ctx = this.context(namespace, log);
      // The spec goes through the one job description and builder, as save's flags and the daemon's do.
      const job = await resolveJob(action.spec, action.cluster, ctx);
      // The Secrets' values (an S3 secret key, an Azure key or SAS) are kept out of every status and Event.
      (this.o.redactor ?? processRedactor).add(...job.secrets);
      const { source, encryption } = job;
      const store = job.store as OperatorStore;
      let result: Awaited<ReturnType<typeof saveBackup>>;
      let lock: string | undefined;
      try {
        result = await saveBackup({
          source,
          store,
          cluster: action.cluster,
          compression: job.compression,
          ...(job.level !== undefined ? { level: job.level } : {}),
          encryption,
          signal: controller.signal,
        });
        lock = await storedLock(action.spec.destination, store, result.key, log);
      } finally {
        store.destroy();
      }
      const m = result.manifest;
      const full = (k: string) => (store.prefix ? `${store.prefix}/${k}` : k);
      const labels = { namespace, cluster: action.cluster };
      this.o.metrics.duration.observe(labels, (performance.now() - started) / 1000);
      this.o.metrics.lastSuccess.set(labels, Date.now() / 1000);
      this.o.metrics.lastSize.set(labels, m.sizes.stored);
      log.info({ key: full(result.key), stored: m.sizes.stored, dbSize: m.dbSize }, "backup stored");
      return {
        kind: "stored",
        bucket: store instanceof AzureBlobStore ? store.container : store.bucket,
        root: storeRoot(store),
        key: full(result.key),
        manifestKey: full(result.manifestKey),
        dbSize: m.dbSize,
        storedSize: m.sizes.stored,
        ...(m.etcd?.revision !== undefined ? { revision: m.etcd.revision } : {}),
        sha256: m.sha256,
        ...(lock ? { lock } : {}),
      };
    } catch (err) {
      if (parent.aborted) return { kind: "stopped" };
      if (controller.signal.aborted) return { kind: "deleted" };
      return { kind: "failed", failure: classifyFailure(err, this.redact) };
    } finally {
      parent.removeEventListener("abort", onParentAbort);
      this.running.delete(key);
      this.o.metrics.inFlight.dec();
    }
  }

  /** Deletes the stored object and manifest (full keys, from the bucket's root); records the outcome. */
  private async deleteStored(obj: EtcdBackup, key: string, manifestKey: string | undefined): Promise<void> {
    try {
      const store = await resolveStore(
        obj.spec.destination,
        this.context(obj.metadata.namespace, this.o.log),
        true,
      );
      try {
        await store.delete(key);
        if (manifestKey) await store.delete(manifestKey);
      } finally {
        store.destroy();
      }
      await this.o.events.record(obj, "Normal", Reason.Deleted, `deleted ${storeRoot(store)}/${key}`);
    } catch (err) {
      await this.o.events.record(
        obj,
        "Warning",
        Reason.DeleteFailed,
        `cannot delete the stored backup (${reasonOf(err, Reason.DeleteFailed)}): ${describeError(err)}; the finalizer ${DELETE_FINALIZER} stays until it succeeds (or remove it to keep the object)`,
      );
      throw err;
    }
  }
}

const keyOf = (o: EtcdBackup) => `${o.metadata.namespace}/${o.metadata.name}`;

/**
 * What holds a backup just stored, read back from the store (`compliance until 2026-12-01T13:00:53Z`, `legal
 * hold`), when its destination asks for a lock: the Event then says the object cannot be deleted before then.
 * Undefined without a lock, or when the store does not say (logged: the backup itself is stored).
 */
async function storedLock(
  destination: DestinationSpec,
  store: Store,
  key: string,
  log: Logger,
): Promise<string | undefined> {
  const asked = [destination.s3, destination.gcs, destination.azureBlob].some(
    (d) => d?.objectLock?.mode !== undefined || d?.objectLock?.legalHold === true,
  );
  if (!asked || !store.retention) return undefined;
  try {
    const label = retentionLabel(await store.retention(key));
    return label === "-" ? undefined : label;
  } catch (err) {
    log.warn({ err: describeError(err) }, "cannot read back the lock of the stored backup");
    return undefined;
  }
}
