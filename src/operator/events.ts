import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Kube } from "./kube.ts";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
}

/**
 * Records core/v1 Events about our objects (what `kubectl describe` shows). A failure to record is logged and
 * never fails the reconcile. Messages come from our own code and error chains, which hold no secrets.
 */
export class EventRecorder {
  private readonly kube: Kube;
  private readonly component: string;
  private readonly instance: string;
  private readonly log: Logger;

  constructor(kube: Kube, instance: string, log: Logger, component = "etcd-backup-operator") {
    this.kube = kube;
    this.instance = instance;
    this.component = component;
    this.log = log;
  }

  async record(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const { name, namespace, uid, resourceVersion } = target.metadata;
    const body = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name,
        namespace,
        ...(uid ? { uid } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      type,
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.kube.createEvent(namespace, body);
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message, reason, object: `${namespace}/${name}` },
        "cannot record event",
      );
    }
  }
}
