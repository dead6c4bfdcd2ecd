import type { Logger } from "pino";
import { sleep } from "./informer.ts";
import { isConflict, type Kube, type LeaseObject, microTime } from "./kube.ts";

export interface LeaderElectionOptions {
  kube: Kube;
  namespace: string;
  name: string;
  /** Who we are in the Lease (`holderIdentity`): unique per replica. */
  identity: string;
  /** How long a Lease stays valid without renewal (client-go default 15 s). */
  leaseDurationMs: number;
  /** A leader that could not renew for this long gives up (must be below the duration; default 10 s). */
  renewDeadlineMs: number;
  /** Time between tries to acquire or renew (default 2 s). */
  retryPeriodMs: number;
  log: Logger;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a candidate takes the
 * Lease when it is free or its holder has not renewed it for `leaseDuration` (measured on our own clock from
 * when we last saw it change, so clock skew between nodes does not matter); every write carries the
 * resourceVersion read, so of two candidates only one wins. The leader renews every `retryPeriod` and gives up
 * when it could not renew within `renewDeadline`, which is shorter than the duration: it stops before anyone
 * else may start.
 */
export class LeaderElector {
  private readonly o: LeaderElectionOptions;
  private observed: { record: string; at: number } | undefined;

  constructor(options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) {
      throw new Error("the renew deadline must be shorter than the lease duration");
    }
    this.o = options;
  }

  /** Resolves once we hold the Lease; rejects only when `signal` aborts. */
  async acquire(signal: AbortSignal): Promise<void> {
    this.o.log.info(
      { lease: `${this.o.namespace}/${this.o.name}`, holder: this.o.identity },
      "waiting for the leader Lease",
    );
    for (;;) {
      signal.throwIfAborted();
      if (await this.tryAcquireOrRenew().catch((err) => this.failed(err))) {
        this.o.log.info({ holder: this.o.identity }, "became leader");
        return;
      }
      await sleep(this.o.retryPeriodMs, signal);
    }
  }

  /**
   * Renews the Lease until `signal` aborts (then resolves) or a renewal deadline passes (then calls `onLost` and
   * resolves).
   */
  async renew(signal: AbortSignal, onLost: () => void): Promise<void> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (signal.aborted) return;
      const ok = await this.tryAcquireOrRenew().catch((err) => this.failed(err));
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew >= this.o.renewDeadlineMs || ok === null) {
        this.o.log.error({ holder: this.o.identity }, "lost the leader Lease");
        onLost();
        return;
      }
    }
  }

  /** Gives the Lease up (on a clean shutdown) so the next replica need not wait for it to expire. */
  async release(): Promise<void> {
    const { kube, namespace, name, identity } = this.o;
    try {
      const lease = await kube.getLease(namespace, name);
      if (!lease || lease.spec.holderIdentity !== identity) return;
      await kube.replaceLease(namespace, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
      this.o.log.info("released the leader Lease");
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, "cannot release the leader Lease");
    }
  }

  private failed(err: unknown): false {
    this.o.log.warn({ err: (err as Error).message }, "leader Lease request failed");
    return false;
  }

  /** True when we hold the Lease after this try; null when someone else took it from us. */
  private async tryAcquireOrRenew(): Promise<boolean | null> {
    const { kube, namespace, name, identity } = this.o;
    const now = new Date();
    const durationSeconds = Math.max(1, Math.round(this.o.leaseDurationMs / 1000));
    const lease = await kube.getLease(namespace, name);
    if (!lease) {
      try {
        await kube.createLease(namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        this.observed = undefined;
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? "";
    const mine = holder === identity;
    const expired = this.observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 <= Date.now();
    if (holder && !mine && !expired) return false;
    const next: LeaseObject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name,
        namespace,
        ...(lease.metadata.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
      },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine && spec.acquireTime ? toMicro(spec.acquireTime) : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      await kube.replaceLease(namespace, next);
      return true;
    } catch (err) {
      if (isConflict(err)) return mine ? null : false;
      throw err;
    }
  }
}

/** The client may hand MicroTimes back as Date or string. */
function toMicro(v: unknown): string {
  return microTime(v instanceof Date ? v : new Date(String(v)));
}
