import type { Logger } from "pino";
import { describeError } from "../errors.ts";
import { isConflict, type Kube, KubeError, type KubeObject, type WatchEvent } from "./kube.ts";

export type InformerEvent = "added" | "modified" | "deleted";

export interface InformerOptions<T extends KubeObject> {
  kube: Kube;
  plural: string;
  /** One namespace, or undefined for all. */
  namespace: string | undefined;
  onEvent: (type: InformerEvent, object: T) => void;
  log: Logger;
  /** Seconds the server keeps one watch open before we start the next from the last resourceVersion. */
  watchTimeoutSeconds?: number;
  onRelist?: () => void;
}

const key = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;

/**
 * A list+watch cache of one kind: lists, then watches from the list's resourceVersion, resuming each watch from
 * the last resourceVersion seen (BOOKMARKs included). When the server answers 410 Gone (the history it keeps no
 * longer reaches back that far) it lists again and reports what changed meanwhile, deletions included. Other
 * failures are retried with a capped exponential backoff.
 */
export class Informer<T extends KubeObject> {
  readonly cache = new Map<string, T>();
  private readonly options: InformerOptions<T>;
  private resolveSynced!: () => void;
  /** Resolves after the first complete list. */
  readonly synced = new Promise<void>((resolve) => {
    this.resolveSynced = resolve;
  });

  constructor(options: InformerOptions<T>) {
    this.options = options;
  }

  get(k: string): T | undefined {
    return this.cache.get(k);
  }

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { kube, plural, namespace, log } = this.options;
    let resourceVersion = "";
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!resourceVersion) {
          resourceVersion = await this.relist();
          this.resolveSynced();
        }
        let expired = false;
        await kube.watch<T>(
          plural,
          namespace,
          resourceVersion,
          (ev) => {
            const rv = this.apply(ev);
            if (rv === "expired") expired = true;
            else if (rv) resourceVersion = rv;
          },
          signal,
          this.options.watchTimeoutSeconds ?? 300,
        );
        failures = 0;
        if (expired) {
          log.info({ plural }, "watch history expired (410 Gone); listing again");
          resourceVersion = "";
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeError && err.code === 410) {
          resourceVersion = "";
          continue;
        }
        failures++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
        log.warn({ plural, err: describeError(err), retryInMs: delay }, "list/watch failed");
        await sleep(delay, signal);
        if (isConflict(err)) resourceVersion = "";
      }
    }
  }

  /** Lists and reconciles the cache with the list, reporting every difference. */
  private async relist(): Promise<string> {
    const { kube, plural, namespace } = this.options;
    this.options.onRelist?.();
    const { items, resourceVersion } = await kube.list<T>(plural, namespace);
    const seen = new Set<string>();
    for (const item of items) {
      const k = key(item);
      seen.add(k);
      const old = this.cache.get(k);
      this.cache.set(k, item);
      if (!old) this.options.onEvent("added", item);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion)
        this.options.onEvent("modified", item);
    }
    for (const [k, old] of [...this.cache]) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        this.options.onEvent("deleted", old);
      }
    }
    return resourceVersion;
  }

  /** Applies one watch event; returns its resourceVersion, or "expired" for a 410 ERROR event. */
  private apply(ev: WatchEvent<T>): string | undefined {
    if (ev.type === "ERROR") {
      const code = (ev.object as unknown as { code?: number }).code;
      if (code === 410) return "expired";
      throw new KubeError(`watch ${this.options.plural}: error event`, code ?? 500, "WatchError");
    }
    const rv = ev.object?.metadata?.resourceVersion;
    if (ev.type === "BOOKMARK") return rv;
    const k = key(ev.object);
    if (ev.type === "DELETED") {
      this.cache.delete(k);
      this.options.onEvent("deleted", ev.object);
    } else {
      const existed = this.cache.has(k);
      this.cache.set(k, ev.object);
      this.options.onEvent(existed ? "modified" : "added", ev.object);
    }
    return rv;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
