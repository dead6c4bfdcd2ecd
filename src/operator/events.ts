import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { processRedactor, type Redactor } from "../observability/redact.ts";
import type { Kube } from "./kube.ts";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
}

/**
 * Records core/v1 Events about our objects (what `kubectl describe` shows). A failure to record is logged and
 * never fails the reconcile. Every message passes the redactor before it is sent: error chains come from
 * libraries and servers, and an Event is readable by anyone who can `kubectl describe` the object.
 */
export class EventRecorder {
  private readonly kube: Kube;
  private readonly component: string;
  private readonly instance: string;
  private readonly log: Logger;
  private readonly redactor: Redactor;

  constructor(
    kube: Kube,
    instance: string,
    log: Logger,
    component = "etcd-backup-operator",
    redactor: Redactor = processRedactor,
  ) {
    this.kube = kube;
    this.redactor = redactor;
    this.instance = instance;
    this.component = component;
    this.log = log;
  }

  async record(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    rawMessage: string,
  ): Promise<void> {
    const message = this.redactor.redact(rawMessage);
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
