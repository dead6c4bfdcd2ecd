import type { Logger } from "pino";
import { saveBackup } from "../../backup/save.ts";
import { manifestKey } from "../../catalog/names.ts";
import { describeError } from "../../errors.ts";
import { processRedactor, type Redactor } from "../../observability/redact.ts";
import { S3Store } from "../../store/s3.ts";
import { Reason } from "../api.ts";
import { classifyFailure } from "../backup-decision.ts";
import { redactConditions } from "../conditions.ts";
import type { EventRecorder } from "../events.ts";
import type { ClusterGate, RunEnd } from "../fleet/cluster-gate.ts";
import { isConflict, isNotFound, type Kube } from "../kube.ts";
import type { OperatorMetrics } from "../metrics.ts";
import {
  buildJob,
  type ConfigReader,
  jobConfigFromSpec,
  type ResolveContext,
  SpecProblem,
} from "../resolve.ts";
import {
  type SecretKeySelector,
  TALOS_BACKUP_FINALIZER,
  TALOS_BACKUP_PLURAL,
  type TalosEtcdBackup,
  type TalosEtcdBackupSpec,
  type TalosEtcdBackupStatus,
} from "./api.ts";
import {
  decideTalosBackup,
  talosBackupFailed,
  talosBackupSucceeded,
  talosRetryDelayMs,
} from "./backup-decision.ts";
import { translateBackup } from "./translate.ts";

export interface TalosBackupControllerOptions {
  /** A Kube for the talos.alperen.cloud group. */
  kube: Kube;
  /** Secrets are read through the operator's own reader (its values are redacted from every output). */
  reader: ConfigReader;
  events: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  controlPlanes: NonNullable<ResolveContext["controlPlanes"]>;
  gate?: ClusterGate;
  retryBaseMs?: number;
  redactor?: Redactor;
}

const keyOf = (o: TalosEtcdBackup) => `${o.metadata.namespace}/${o.metadata.name}`;

/** Reads a credential a TalosEtcdBackup names (each selector may name its own Secret). */
async function selectorText(ctx: ResolveContext, s: SecretKeySelector, field: string): Promise<string> {
  const data = await ctx.reader.secret(ctx.namespace, s.name);
  if (!data) {
    throw new SpecProblem(
      Reason.SecretNotFound,
      `Secret ${ctx.namespace}/${s.name} (${field}) not found: create it in namespace ${ctx.namespace} or fix ${field}`,
    );
  }
  const value = data[s.key];
  if (value === undefined) {
    const known = Object.keys(data).sort().join(", ") || "none";
    throw new SpecProblem(
      Reason.KeyNotFound,
      `Secret ${ctx.namespace}/${s.name} has no key ${JSON.stringify(s.key)} (${field}); its keys: ${known}`,
    );
  }
  return value.toString("utf8").trim();
}

/** The job a TalosEtcdBackup describes: the same builder as every other front end's. */
export async function talosBackupJob(b: Pick<TalosEtcdBackup, "metadata" | "spec">, ctx: ResolveContext) {
  const t = translateBackup(b);
  const input = await jobConfigFromSpec(t.spec, t.cluster, ctx);
  input.s3Secrets = {
    credentials: {
      accessKeyId: await selectorText(ctx, t.credentials.accessKeyId, "spec.backupStorage.s3.accessKeyID"),
      secretAccessKey: await selectorText(
        ctx,
        t.credentials.secretAccessKey,
        "spec.backupStorage.s3.secretAccessKey",
      ),
    },
  };
  return { translated: t, job: await buildJob(input, ctx) };
}

/** The bucket a TalosEtcdBackup spec names, at its root (to delete by full key); no control plane is read. */
export async function talosBackupStore(spec: TalosEtcdBackupSpec, ctx: ResolveContext): Promise<S3Store> {
  const t = translateBackup({ metadata: { name: "-", namespace: ctx.namespace }, spec });
  const s3 = t.spec.destination.s3;
  return new S3Store({
    bucket: s3.bucket,
    prefix: "",
    settings: {
      ...(s3.region ? { region: s3.region } : {}),
      ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
      ...(s3.pathStyle ? { pathStyle: true } : {}),
      ...(s3.insecureSkipVerify ? { insecureSkipTlsVerify: true } : {}),
    },
    credentials: {
      accessKeyId: await selectorText(ctx, t.credentials.accessKeyId, "spec.backupStorage.s3.accessKeyID"),
      secretAccessKey: await selectorText(
        ctx,
        t.credentials.secretAccessKey,
        "spec.backupStorage.s3.secretAccessKey",
      ),
    },
    warn: ctx.warn,
  });
}

/**
 * Reconciles TalosEtcdBackups: claims one (a conditional status write), runs it through the Talos API of the
 * TalosControlPlane it names, stores the plain snapshot (or what the opt-in annotations ask for) under the Talos
 * operator's key with our manifest beside it, and reports it in the Talos operator's status and conditions.
 * Failed attempts are retried with a doubling backoff, tracked in this process.
 */
export class TalosBackupController {
  private readonly o: TalosBackupControllerOptions;
  private readonly running = new Map<string, AbortController>();
  private readonly failures = new Map<string, { count: number; nextAt: number }>();

  constructor(options: TalosBackupControllerOptions) {
    this.o = options;
  }

  private readonly redact = (text: string): string => (this.o.redactor ?? processRedactor).redact(text);

  abort(key: string, reason: string): void {
    this.running.get(key)?.abort(new Error(reason));
  }

  private context(namespace: string, log: Logger): ResolveContext {
    return {
      namespace,
      reader: this.o.reader,
      controlPlanes: this.o.controlPlanes,
      warn: (l) => log.warn(l),
    };
  }

  async reconcile(key: string, signal: AbortSignal): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let b: TalosEtcdBackup;
    try {
      b = await this.o.kube.get<TalosEtcdBackup>(TALOS_BACKUP_PLURAL, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const now = new Date();
    const uid = b.metadata.uid ?? key;
    const decision = decideTalosBackup({
      backup: b,
      now,
      running: this.running.has(key),
      failures: this.failures.get(uid),
    });
    if (decision.kind === "nothing") return decision.requeueAfterMs;
    if (decision.kind === "addFinalizer" || decision.kind === "release") {
      if (decision.kind === "release") {
        try {
          await this.deleteStored(b, this.o.log);
        } catch (err) {
          await this.o.events.record(
            b,
            "Warning",
            "DeleteFailed",
            `${describeError(err)}; the finalizer ${TALOS_BACKUP_FINALIZER} stays until it succeeds (or remove it to keep the object)`,
          );
          throw err;
        }
      }
      try {
        const { resourceVersion } = b.metadata;
        await this.o.kube.patch(TALOS_BACKUP_PLURAL, namespace, name, {
          metadata: { finalizers: decision.finalizers, resourceVersion },
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (isConflict(err)) return 0;
        throw err;
      }
      return decision.kind === "addFinalizer" ? 0 : undefined;
    }
    const cluster = talosClusterOf(b);
    const gate = this.o.gate;
    const wait = gate?.waitMs(cluster, now) ?? 0;
    if (wait > 0) return wait;
    gate?.started(cluster);
    let outcome: Awaited<ReturnType<TalosBackupController["run"]>> | undefined;
    try {
      try {
        b = await this.writeStatus(b, decision.claim, true);
      } catch (err) {
        if (isConflict(err)) return 0; // changed meanwhile, or another replica has it
        throw err;
      }
      outcome = await this.run(b, cluster, signal);
    } finally {
      gate?.finished(cluster, outcome?.end ?? "other", new Date());
    }
    if (outcome.kind === "stopped") return undefined;
    const done = new Date();
    const labels = { namespace, cluster };
    if (outcome.kind === "stored") {
      this.failures.delete(uid);
      this.o.metrics.backups.inc({ ...labels, result: "success" });
      await this.writeStatus(b, talosBackupSucceeded(b, outcome, done), false);
      await this.o.events.record(
        b,
        "Normal",
        "BackupSucceeded",
        `stored s3://${outcome.bucket}/${outcome.key}`,
      );
      return undefined;
    }
    const count = (this.failures.get(uid)?.count ?? 0) + 1;
    const delay = talosRetryDelayMs(count, this.o.retryBaseMs ?? 10_000);
    const nextAt = new Date(done.getTime() + delay);
    this.failures.set(uid, { count, nextAt: nextAt.getTime() });
    this.o.metrics.backups.inc({ ...labels, result: "failure" });
    this.o.log.warn(
      { backup: key, reason: outcome.failure.reason, err: outcome.failure.message },
      "backup failed",
    );
    await this.writeStatus(b, talosBackupFailed(b, outcome.failure, nextAt, done), false).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
    await this.o.events.record(b, "Warning", outcome.failure.reason, outcome.failure.message);
    return delay;
  }

  private async writeStatus(
    b: TalosEtcdBackup,
    status: Partial<Record<keyof TalosEtcdBackupStatus, unknown>>,
    conditional: boolean,
  ): Promise<TalosEtcdBackup> {
    const { namespace, name, resourceVersion } = b.metadata;
    const conditions = status.conditions as TalosEtcdBackupStatus["conditions"];
    const redacted = conditions
      ? { ...status, conditions: redactConditions(conditions, this.redact) }
      : status;
    const body = conditional ? { metadata: { resourceVersion }, status: redacted } : { status: redacted };
    return await this.o.kube.patch<TalosEtcdBackup>(TALOS_BACKUP_PLURAL, namespace, name, body, true);
  }

  /** Runs the backup; never throws. */
  private async run(
    b: TalosEtcdBackup,
    cluster: string,
    parent: AbortSignal,
  ): Promise<
    | { kind: "stored"; bucket: string; key: string; end: RunEnd }
    | { kind: "failed"; failure: { reason: string; message: string }; end: RunEnd }
    | { kind: "stopped"; end: RunEnd }
  > {
    const key = keyOf(b);
    const log = this.o.log.child({ backup: key });
    const controller = new AbortController();
    const onAbort = () => controller.abort(parent.reason);
    parent.addEventListener("abort", onAbort, { once: true });
    this.running.set(key, controller);
    this.o.metrics.inFlight.inc();
    const started = performance.now();
    try {
      const { translated, job } = await talosBackupJob(b, this.context(b.metadata.namespace, log));
      const store = job.store as S3Store;
      try {
        const result = await saveBackup({
          source: job.source,
          store,
          cluster,
          compression: job.compression,
          ...(job.level !== undefined ? { level: job.level } : {}),
          encryption: job.encryption,
          dir: translated.dir,
          layout: "talos-operator",
          signal: controller.signal,
        });
        const labels = { namespace: b.metadata.namespace, cluster };
        this.o.metrics.duration.observe(labels, (performance.now() - started) / 1000);
        this.o.metrics.lastSuccess.set(labels, Date.now() / 1000);
        this.o.metrics.lastSize.set(labels, result.manifest.sizes.stored);
        log.info({ key: result.key, stored: result.manifest.sizes.stored }, "backup stored");
        return { kind: "stored", bucket: store.bucket, key: result.key, end: "succeeded" };
      } finally {
        store.destroy();
      }
    } catch (err) {
      if (parent.aborted || controller.signal.aborted) return { kind: "stopped", end: "other" };
      const f = classifyFailure(err, this.redact);
      return {
        kind: "failed",
        failure: { reason: f.reason, message: f.message },
        end: f.reason === Reason.SourceUnreachable ? "unreachable" : "other",
      };
    } finally {
      parent.removeEventListener("abort", onAbort);
      this.running.delete(key);
      this.o.metrics.inFlight.dec();
    }
  }

  /** Deletes a stored backup and its manifest (retention), by its full key. */
  async deleteStored(b: TalosEtcdBackup, log: Logger): Promise<void> {
    const filename = b.status?.filename;
    if (!filename) return;
    const store = await talosBackupStore(b.spec, this.context(b.metadata.namespace, log));
    try {
      await store.delete(filename);
      await store.delete(manifestKey(filename));
    } catch (err) {
      throw new Error(`cannot delete s3://${store.bucket}/${filename}: ${describeError(err)}`, {
        cause: err,
      });
    } finally {
      store.destroy();
    }
  }
}

/** The cluster a TalosEtcdBackup backs up, as the gate, metrics and status page name it: its control plane. */
export function talosClusterOf(b: Pick<TalosEtcdBackup, "metadata" | "spec">): string {
  return b.spec?.talosControlPlaneRef?.name ?? b.metadata.name;
}
