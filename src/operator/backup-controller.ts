import type { Logger } from "pino";
import { saveBackup } from "../backup/save.ts";
import { isValidClusterName } from "../catalog/names.ts";
import { describeError } from "../errors.ts";
import { processRedactor, type Redactor } from "../observability/redact.ts";
import {
  API_VERSION,
  BACKUP_KIND,
  BACKUP_PLURAL,
  DELETE_FINALIZER,
  type EtcdBackup,
  type EtcdBackupStatus,
  Reason,
  SCHEDULE_LABEL,
} from "./api.ts";
import { setConditions, timestamp } from "./conditions.ts";
import type { EventRecorder } from "./events.ts";
import { isConflict, isNotFound, type Kube } from "./kube.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { type ConfigReader, resolveEncryption, resolveSource, resolveStore, SpecProblem } from "./resolve.ts";
import { checkBackupSpec, InvalidSpecError } from "./spec.ts";

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
}

const RETRY_CAP_MS = 600_000;

/**
 * Reconciles one EtcdBackup: runs it once (claiming it with a conditional status write so that two replicas can
 * never both start it), retries failed attempts with exponential backoff up to `spec.backoffLimit`, and, for
 * `deletionPolicy: Delete`, holds a finalizer until the stored object and manifest are deleted.
 */
export class BackupController {
  private readonly o: BackupControllerOptions;
  /** Backups running in this process, by `namespace/name`: aborted when their object goes. */
  private readonly running = new Map<string, AbortController>();

  constructor(options: BackupControllerOptions) {
    this.o = options;
  }

  /** Aborts the run of a backup whose object was deleted. */
  abort(key: string, reason: string): void {
    this.running.get(key)?.abort(new Error(reason));
  }

  /** Returns the delay after which to look again, if any. */
  async reconcile(key: string, signal: AbortSignal): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let obj: EtcdBackup;
    try {
      obj = await this.o.kube.get<EtcdBackup>(BACKUP_PLURAL, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (obj.metadata.deletionTimestamp) return await this.finalize(obj);

    const policy = obj.spec?.deletionPolicy ?? "Retain";
    const finalizers = obj.metadata.finalizers ?? [];
    const hasFinalizer = finalizers.includes(DELETE_FINALIZER);
    if (policy === "Delete" && !hasFinalizer) {
      obj = await this.setFinalizers(obj, [...finalizers, DELETE_FINALIZER]);
    } else if (policy !== "Delete" && hasFinalizer) {
      obj = await this.setFinalizers(
        obj,
        finalizers.filter((f) => f !== DELETE_FINALIZER),
      );
    }

    const status = obj.status ?? {};
    const generation = obj.metadata.generation ?? 1;
    const sameGeneration = status.observedGeneration === generation;
    if (status.phase === "Succeeded") return undefined;
    const backoffLimit = obj.spec?.backoffLimit ?? 3;
    const attempts = sameGeneration ? (status.failedAttempts ?? 0) : 0;
    if (sameGeneration && status.phase === "Failed") {
      if (attempts > backoffLimit || !status.nextRetryTime) return undefined;
      const wait = Date.parse(status.nextRetryTime) - Date.now();
      if (wait > 0) return wait;
    }
    return await this.run(obj, attempts, signal);
  }

  private async setFinalizers(obj: EtcdBackup, finalizers: string[]): Promise<EtcdBackup> {
    const { namespace, name, resourceVersion } = obj.metadata;
    return await this.o.kube.patch<EtcdBackup>(BACKUP_PLURAL, namespace, name, {
      metadata: { finalizers, resourceVersion },
    });
  }

  private async writeStatus(
    obj: EtcdBackup,
    status: EtcdBackupStatus,
    conditional: boolean,
  ): Promise<EtcdBackup> {
    const { namespace, name, resourceVersion } = obj.metadata;
    const body = conditional ? { metadata: { resourceVersion }, status } : { status };
    return await this.o.kube.patch<EtcdBackup>(BACKUP_PLURAL, namespace, name, body, true);
  }

  private async run(obj: EtcdBackup, attempts: number, parent: AbortSignal): Promise<number | undefined> {
    const { namespace, name } = obj.metadata;
    const key = `${namespace}/${name}`;
    const generation = obj.metadata.generation ?? 1;
    const now = new Date();
    const log = this.o.log.child({ backup: key });
    const base: EtcdBackupStatus = {
      observedGeneration: generation,
      failedAttempts: attempts,
      nextRetryTime: null as unknown as string, // merge patch: remove
    };

    let cluster = obj.spec?.clusterName ?? obj.metadata.labels?.[SCHEDULE_LABEL] ?? name;
    // Claim: a conditional write; a replica that lost the race gets 409 and looks again.
    let claimed: EtcdBackup;
    try {
      claimed = await this.writeStatus(
        obj,
        {
          ...base,
          phase: "Running",
          startTime: timestamp(now),
          completionTime: null as unknown as string,
          conditions: setConditions(
            obj.status?.conditions,
            [
              {
                type: "Progressing",
                status: "True",
                reason: Reason.BackupInProgress,
                message: "taking the snapshot",
                observedGeneration: generation,
              },
              {
                type: "Ready",
                status: "False",
                reason: Reason.BackupInProgress,
                message: "not stored yet",
                observedGeneration: generation,
              },
            ],
            now,
          ),
        },
        true,
      );
    } catch (err) {
      if (isConflict(err)) return 0;
      throw err;
    }

    const controller = new AbortController();
    const onParentAbort = () => controller.abort(parent.reason);
    parent.addEventListener("abort", onParentAbort, { once: true });
    this.running.set(key, controller);
    this.o.metrics.inFlight.inc();
    const started = performance.now();
    try {
      const spec = checkBackupSpec(obj.spec);
      if (!isValidClusterName(cluster)) {
        throw new SpecProblem(
          Reason.InvalidSpec,
          `cluster name ${JSON.stringify(cluster)} cannot stand in an object name: set spec.clusterName (letters, digits, '.', '_', '-', at most 100)`,
        );
      }
      cluster = spec.clusterName ?? cluster;
      await this.o.events.record(claimed, "Normal", "BackupStarted", `backup of cluster ${cluster} started`);
      const ctx = {
        namespace,
        reader: this.o.reader,
        ...(this.o.talosServiceAccountDir ? { talosServiceAccountDir: this.o.talosServiceAccountDir } : {}),
        warn: (line: string) => log.warn(line),
      };
      const source = await resolveSource(spec, ctx);
      const encryption = await resolveEncryption(spec, ctx);
      const store = await resolveStore(spec.destination.s3, ctx);
      let result: Awaited<ReturnType<typeof saveBackup>>;
      try {
        result = await saveBackup({
          source,
          store,
          cluster,
          compression: spec.compression ?? "zstd",
          ...(spec.compressionLevel ? { level: spec.compressionLevel } : {}),
          encryption,
          signal: controller.signal,
        });
      } finally {
        store.destroy();
      }
      const m = result.manifest;
      const done = new Date();
      const fullKey = store.prefix ? `${store.prefix}/${result.key}` : result.key;
      const fullManifestKey = store.prefix ? `${store.prefix}/${result.manifestKey}` : result.manifestKey;
      await this.writeStatus(
        claimed,
        {
          ...base,
          failedAttempts: 0,
          phase: "Succeeded",
          key: fullKey,
          manifestKey: fullManifestKey,
          location: `s3://${store.bucket}`,
          dbSize: m.dbSize,
          storedSize: m.sizes.stored,
          ...(m.etcd?.revision !== undefined ? { revision: m.etcd.revision } : {}),
          sha256: m.sha256,
          completionTime: timestamp(done),
          conditions: setConditions(
            claimed.status?.conditions,
            [
              {
                type: "Progressing",
                status: "False",
                reason: Reason.BackupCompleted,
                message: "done",
                observedGeneration: generation,
              },
              {
                type: "Ready",
                status: "True",
                reason: Reason.BackupSucceeded,
                message: `stored s3://${store.bucket}/${fullKey}`,
                observedGeneration: generation,
              },
              {
                type: "Failed",
                status: "False",
                reason: Reason.BackupSucceeded,
                message: "",
                observedGeneration: generation,
              },
            ],
            done,
          ),
        },
        false,
      );
      const labels = { namespace, cluster };
      this.o.metrics.backups.inc({ ...labels, result: "success" });
      this.o.metrics.duration.observe(labels, (performance.now() - started) / 1000);
      this.o.metrics.lastSuccess.set(labels, done.getTime() / 1000);
      this.o.metrics.lastSize.set(labels, m.sizes.stored);
      log.info({ key: fullKey, stored: m.sizes.stored, dbSize: m.dbSize }, "backup stored");
      await this.o.events.record(
        claimed,
        "Normal",
        Reason.BackupSucceeded,
        `stored s3://${store.bucket}/${fullKey} (${m.sizes.stored} bytes, db ${m.dbSize} bytes)`,
      );
      return undefined;
    } catch (err) {
      return await this.failed(claimed, err, attempts, controller.signal, parent, log, cluster);
    } finally {
      parent.removeEventListener("abort", onParentAbort);
      this.running.delete(key);
      this.o.metrics.inFlight.dec();
    }
  }

  private async failed(
    obj: EtcdBackup,
    err: unknown,
    attempts: number,
    signal: AbortSignal,
    parent: AbortSignal,
    log: Logger,
    cluster: string,
  ): Promise<number | undefined> {
    const { namespace } = obj.metadata;
    const generation = obj.metadata.generation ?? 1;
    const now = new Date();
    if (parent.aborted) {
      // The operator is stopping (or lost its lease): not the backup's fault; whoever leads next runs it again.
      this.o.metrics.backups.inc({ namespace, cluster, result: "aborted" });
      log.info("backup aborted: operator stopping");
      await this.writeStatus(
        obj,
        {
          phase: "Pending",
          conditions: setConditions(
            obj.status?.conditions,
            [
              {
                type: "Progressing",
                status: "False",
                reason: Reason.Aborted,
                message:
                  "the operator stopped during the backup; nothing was stored; it runs again when an operator leads",
                observedGeneration: generation,
              },
            ],
            now,
          ),
        },
        false,
      ).catch(() => {});
      return undefined;
    }
    if (signal.aborted) return undefined; // the object is being deleted
    const invalid = err instanceof InvalidSpecError;
    const reason =
      err instanceof SpecProblem ? err.reason : invalid ? Reason.InvalidSpec : Reason.BackupFailed;
    const message = (this.o.redactor ?? processRedactor).redact(
      invalid ? `invalid spec: ${(err as Error).message}` : describeError(err),
    );
    const backoffLimit = obj.spec?.backoffLimit ?? 3;
    // An invalid spec cannot fix itself: no retries until the spec changes.
    const failedAttempts = invalid ? backoffLimit + 1 : attempts + 1;
    const retry = failedAttempts <= backoffLimit;
    const delay = Math.min(RETRY_CAP_MS, (this.o.retryBaseMs ?? 10_000) * 2 ** (failedAttempts - 1));
    // Whole seconds (status times have no fraction), rounded up so that the retry never comes early.
    const nextRetry = new Date(Math.ceil((now.getTime() + delay) / 1000) * 1000);
    this.o.metrics.backups.inc({ namespace, cluster, result: "failure" });
    log.warn({ reason, err: message, retry }, "backup failed");
    await this.writeStatus(
      obj,
      {
        phase: "Failed",
        observedGeneration: generation,
        failedAttempts,
        nextRetryTime: retry ? timestamp(nextRetry) : (null as unknown as string),
        completionTime: timestamp(now),
        conditions: setConditions(
          obj.status?.conditions,
          [
            {
              type: "Progressing",
              status: retry ? "True" : "False",
              reason: retry ? Reason.RetryScheduled : Reason.BackupFailed,
              message: retry
                ? `attempt ${failedAttempts} of ${backoffLimit + 1} failed; next at ${timestamp(nextRetry)}`
                : `gave up after ${failedAttempts} attempt(s); change the spec to try again`,
              observedGeneration: generation,
            },
            {
              type: "Ready",
              status: "False",
              reason: Reason.BackupFailed,
              message: "no backup stored",
              observedGeneration: generation,
            },
            { type: "Failed", status: "True", reason, message, observedGeneration: generation },
          ],
          now,
        ),
      },
      false,
    );
    await this.o.events.record(obj, "Warning", reason, message);
    return retry ? delay : undefined;
  }

  /** Deletion: for `Delete`, removes the stored object and manifest, then the finalizer. */
  private async finalize(obj: EtcdBackup): Promise<number | undefined> {
    const { namespace, name } = obj.metadata;
    const key = `${namespace}/${name}`;
    this.abort(key, "the EtcdBackup is being deleted");
    const finalizers = obj.metadata.finalizers ?? [];
    if (!finalizers.includes(DELETE_FINALIZER)) return undefined;
    if (this.running.has(key)) return 1_000; // let the aborted run finish first
    const status = obj.status ?? {};
    if (status.key) {
      try {
        const store = await resolveStore(
          obj.spec.destination.s3,
          {
            namespace,
            reader: this.o.reader,
            warn: (line) => this.o.log.warn(line),
          },
          true,
        );
        try {
          await store.delete(status.key);
          if (status.manifestKey) await store.delete(status.manifestKey);
        } finally {
          store.destroy();
        }
        await this.o.events.record(
          obj,
          "Normal",
          Reason.Deleted,
          `deleted s3://${store.bucket}/${status.key}`,
        );
      } catch (err) {
        const reason = err instanceof SpecProblem ? err.reason : Reason.DeleteFailed;
        await this.o.events.record(
          obj,
          "Warning",
          Reason.DeleteFailed,
          `cannot delete the stored backup (${reason}): ${describeError(err)}; the finalizer ${DELETE_FINALIZER} stays until it succeeds (or remove it to keep the object)`,
        );
        throw err;
      }
    }
    await this.setFinalizers(
      obj,
      finalizers.filter((f) => f !== DELETE_FINALIZER),
    ).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    return undefined;
  }
}

export { API_VERSION, BACKUP_KIND };
