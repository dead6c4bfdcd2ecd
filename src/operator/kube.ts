import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";
import { API_VERSION, GROUP, VERSION } from "./api.ts";

/**
 * The few Kubernetes API calls the operator makes, on the official client (@kubernetes/client-node). Keeping
 * them in one place keeps the RBAC in deploy/operator/rbac.yaml honest: every verb used is here.
 */

/** A Kubernetes object as JSON, with the metadata the operator reads. */
export interface KubeObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

/** The API server's answer to a failed call: HTTP code and reason (`NotFound`, `Conflict`, ...). */
export class KubeError extends Error {
  override name = "KubeError";
  readonly code: number;
  readonly reason: string;
  constructor(message: string, code: number, reason: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.reason = reason;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeError && err.code === 404;
}
export function isConflict(err: unknown): boolean {
  return err instanceof KubeError && err.code === 409;
}
/** A create refused because the name is taken (409 AlreadyExists; a bare 409 counts too). */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof KubeError && (err.code === 409 || err.reason === "AlreadyExists");
}

/** Loads a kubeconfig file, or the in-cluster ServiceAccount config, or the default (KUBECONFIG, ~/.kube). */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

function toKubeError(what: string, err: unknown): Error {
  if (err instanceof ApiException) {
    let body: { message?: string; reason?: string } = {};
    try {
      body = typeof err.body === "string" ? JSON.parse(err.body) : (err.body as typeof body);
    } catch {}
    const reason = body?.reason ?? String(err.code);
    return new KubeError(`${what}: ${body?.message ?? `HTTP ${err.code}`}`, err.code, reason);
  }
  return new Error(what, { cause: err });
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toKubeError(what, err);
  }
}

const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** An RFC 3339 time with exactly six fraction digits, as the API server wants a MicroTime. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class Kube {
  readonly config: KubeConfig;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly watcher: Watch;

  /** The API group and version of the custom kinds this instance reads and writes (ours by default). */
  readonly group: string;
  readonly version: string;

  constructor(
    config: KubeConfig,
    api: { group: string; version: string } = { group: GROUP, version: VERSION },
  ) {
    this.config = config;
    this.group = api.group;
    this.version = api.version;
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.core = config.makeApiClient(CoreV1Api);
    this.coordination = config.makeApiClient(CoordinationV1Api);
    this.watcher = new Watch(config);
  }

  /** Lists one kind, in one namespace or all (`namespace` undefined). */
  async list<T>(plural: string, namespace: string | undefined): Promise<ListResult<T>> {
    const res = (await call(`list ${plural}`, () =>
      namespace
        ? this.custom.listNamespacedCustomObject({
            group: this.group,
            version: this.version,
            namespace,
            plural,
          })
        : this.custom.listCustomObjectForAllNamespaces({
            group: this.group,
            version: this.version,
            resourcePlural: plural,
          }),
    )) as { items: T[]; metadata?: { resourceVersion?: string } };
    return { items: res.items ?? [], resourceVersion: res.metadata?.resourceVersion ?? "" };
  }

  /**
   * Watches one kind from `resourceVersion` on, calling `onEvent` for each event, until the server closes the
   * stream, an error occurs, or `signal` aborts. Resolves when the watch ended normally; rejects otherwise.
   */
  async watch<T>(
    plural: string,
    namespace: string | undefined,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
    timeoutSeconds = 300,
  ): Promise<void> {
    const path = namespace
      ? `/apis/${this.group}/${this.version}/namespaces/${namespace}/${plural}`
      : `/apis/${this.group}/${this.version}/${plural}`;
    await new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      const onAbort = () => controller?.abort();
      const finish = (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        // The client ends a watch silent for 30 s with a TimeoutError: a normal end; we resume from the last resourceVersion.
        if (err && !signal.aborted && (err as Error).name !== "TimeoutError") {
          const code = (err as { statusCode?: number }).statusCode;
          reject(code ? new KubeError(`watch ${plural}: HTTP ${code}`, code, String(code)) : err);
        } else resolve();
      };
      this.watcher
        .watch(
          path,
          { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (type, object) => onEvent({ type: type as WatchEvent<T>["type"], object: object as T }),
          finish,
        )
        .then((c) => {
          controller = c;
          if (signal.aborted) c.abort();
          else signal.addEventListener("abort", onAbort, { once: true });
        }, finish);
    });
  }

  async get<T>(plural: string, namespace: string, name: string): Promise<T> {
    return (await call(`get ${plural} ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({
        group: this.group,
        version: this.version,
        namespace,
        plural,
        name,
      }),
    )) as T;
  }

  async create<T>(plural: string, namespace: string, body: object): Promise<T> {
    return (await call(`create ${plural} in ${namespace}`, () =>
      this.custom.createNamespacedCustomObject({
        group: this.group,
        version: this.version,
        namespace,
        plural,
        body,
      }),
    )) as T;
  }

  async delete(plural: string, namespace: string, name: string): Promise<void> {
    await call(`delete ${plural} ${namespace}/${name}`, () =>
      this.custom.deleteNamespacedCustomObject({
        group: this.group,
        version: this.version,
        namespace,
        plural,
        name,
        propagationPolicy: "Background",
      }),
    );
  }

  /**
   * JSON merge patch (RFC 7386) of the object (`status: false`) or its status subresource. A
   * `metadata.resourceVersion` in the patch makes it conditional: the server answers 409 when the object changed.
   */
  async patch<T>(plural: string, namespace: string, name: string, body: object, status = false): Promise<T> {
    const param = { group: this.group, version: this.version, namespace, plural, name, body };
    return (await call(`patch ${status ? "status of " : ""}${plural} ${namespace}/${name}`, () =>
      status
        ? this.custom.patchNamespacedCustomObjectStatus(param, merge)
        : this.custom.patchNamespacedCustomObject(param, merge),
    )) as T;
  }

  /** A Secret's data (decoded), or null when it does not exist. */
  async secret(namespace: string, name: string): Promise<Record<string, Buffer> | null> {
    try {
      const s = await call(`get secret ${namespace}/${name}`, () =>
        this.core.readNamespacedSecret({ namespace, name }),
      );
      const out: Record<string, Buffer> = {};
      for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, "base64");
      for (const [k, v] of Object.entries(s.stringData ?? {})) out[k] = Buffer.from(v);
      return out;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** A ConfigMap's data, or null when it does not exist. */
  async configMap(namespace: string, name: string): Promise<Record<string, string> | null> {
    try {
      const c = await call(`get configmap ${namespace}/${name}`, () =>
        this.core.readNamespacedConfigMap({ namespace, name }),
      );
      return { ...(c.data ?? {}) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Creates a core/v1 Event. */
  async createEvent(namespace: string, body: object): Promise<void> {
    await call(`create event in ${namespace}`, () =>
      this.core.createNamespacedEvent({ namespace, body: body as never }),
    );
  }

  async getLease(namespace: string, name: string): Promise<LeaseObject | null> {
    try {
      return (await call(`get lease ${namespace}/${name}`, () =>
        this.coordination.readNamespacedLease({ namespace, name }),
      )) as unknown as LeaseObject;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async createLease(namespace: string, lease: LeaseObject): Promise<LeaseObject> {
    return (await call(`create lease ${namespace}/${lease.metadata.name}`, () =>
      this.coordination.createNamespacedLease({ namespace, body: lease as never }),
    )) as unknown as LeaseObject;
  }

  /** Replaces a Lease; its `metadata.resourceVersion` makes this fail with 409 when someone else wrote it. */
  async replaceLease(namespace: string, lease: LeaseObject): Promise<LeaseObject> {
    return (await call(`update lease ${namespace}/${lease.metadata.name}`, () =>
      this.coordination.replaceNamespacedLease({
        namespace,
        name: lease.metadata.name,
        body: lease as never,
      }),
    )) as unknown as LeaseObject;
  }
}

/** A coordination.k8s.io/v1 Lease as JSON (times as MicroTime strings). */
export interface LeaseObject {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export { API_VERSION };
