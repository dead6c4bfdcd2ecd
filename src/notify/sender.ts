import { Counter, type Registry } from "prom-client";
import { errorChain } from "../errors.ts";
import { type NotifyEvent, notificationBody } from "./payload.ts";
import type { NotifyEventKind, NotifyTarget } from "./target.ts";

/*
 * Posts notifications. A notification never fails what it reports on: `notify` resolves whatever the
 * receivers answer, logs each failure (naming the receiver by its label, never its URL) and counts it in
 * `etcd_backup_notifications_total{event,result}`.
 *
 * Each receiver gets up to `attempts` tries with exponential backoff: a network error, a timeout, a 5xx, a 408
 * or a 429 (whose Retry-After is honoured, within the cap) is retried; any other 4xx is not (the request is wrong
 * or the webhook is gone, and trying again cannot help). Redirects are not followed: the token would go to
 * another host.
 */

export interface RetryPolicy {
  /** Tries per receiver, the first included. */
  attempts: number;
  /** Delay before the second try; doubles per try. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** One try's limit. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  timeoutMs: 10_000,
};

/** How one receiver's delivery went. */
export interface Delivery {
  receiver: string;
  event: NotifyEventKind;
  ok: boolean;
  attempts: number;
  /** Why it failed: one line naming the receiver by its label, no URL. */
  error?: string;
}

export interface NotifierOptions {
  targets: readonly NotifyTarget[];
  /** The events to send; others are dropped. */
  on: readonly NotifyEventKind[];
  retry?: Partial<RetryPolicy>;
  /** Where the counter goes (the daemon's or the operator's registry); absent: not exported. */
  registry?: Registry;
  /** Told about every delivery, failed or not (the front end logs it; `error` is safe to print). */
  report?: (delivery: Delivery) => void;
  /** Removes secrets from error text (the process's redactor); applied on top of never naming the URL. */
  redact?: (text: string) => string;
  /** For tests. */
  fetch?: typeof fetch;
}

export class Notifier {
  private readonly o: NotifierOptions;
  private readonly retry: RetryPolicy;
  private readonly counter: Counter<"event" | "result">;

  constructor(options: NotifierOptions) {
    this.o = options;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    const name = "etcd_backup_notifications_total";
    const existing = options.registry?.getSingleMetric(name) as Counter<"event" | "result"> | undefined;
    this.counter =
      existing ??
      new Counter({
        name,
        help: "Notifications posted to --notify receivers, by event and result (sent or failed)",
        labelNames: ["event", "result"],
        // Exported only where there is a receiver: a daemon without --notify shows no such series.
        registers: options.registry && options.targets.length > 0 ? [options.registry] : [],
      });
    if (!existing && options.targets.length > 0) {
      for (const event of options.on)
        for (const result of ["sent", "failed"]) this.counter.inc({ event, result }, 0);
    }
  }

  /** True when there is a receiver for `kind`. */
  wants(kind: NotifyEventKind): boolean {
    return this.o.targets.length > 0 && this.o.on.includes(kind);
  }

  /**
   * Posts `event` to every receiver (at once) when its kind is wanted; resolves to the deliveries once all
   * are done. Never rejects. `signal` ends the retries (an aborted delivery counts as failed).
   */
  async notify(event: NotifyEvent, signal?: AbortSignal): Promise<Delivery[]> {
    if (!this.wants(event.event)) return [];
    return await Promise.all(this.o.targets.map((t) => this.deliver(t, event, signal)));
  }

  private async deliver(target: NotifyTarget, event: NotifyEvent, signal?: AbortSignal): Promise<Delivery> {
    const body = notificationBody(event, target.format);
    const doFetch = this.o.fetch ?? fetch;
    let lastError = "";
    let attempt = 0;
    while (attempt < this.retry.attempts && !signal?.aborted) {
      attempt++;
      let retryAfterMs: number | undefined;
      try {
        const timeout = AbortSignal.timeout(this.retry.timeoutMs);
        const res = await doFetch(target.url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": "etcd-backup" },
          body,
          redirect: "manual",
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        // The body is read (and dropped) so that the connection is released; its text is never printed (a
        // receiver may echo the request).
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) return this.done(target, event, true, attempt);
        lastError = `HTTP ${res.status}`;
        const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
        if (res.status >= 300 && res.status < 400) lastError += " (redirects are not followed)";
        if (!retryable) break;
        retryAfterMs = retryAfter(res.headers.get("retry-after"));
      } catch (err) {
        lastError = signal?.aborted ? "aborted" : describeFetchError(err, target.url);
      }
      if (attempt >= this.retry.attempts || signal?.aborted) break;
      const backoff = Math.min(this.retry.baseDelayMs * 2 ** (attempt - 1), this.retry.maxDelayMs);
      await wait(Math.min(Math.max(backoff, retryAfterMs ?? 0), this.retry.maxDelayMs), signal);
    }
    if (signal?.aborted && !lastError) lastError = "aborted";
    return this.done(target, event, false, attempt, lastError);
  }

  private done(
    target: NotifyTarget,
    event: NotifyEvent,
    ok: boolean,
    attempts: number,
    error?: string,
  ): Delivery {
    this.counter.inc({ event: event.event, result: ok ? "sent" : "failed" });
    const redact = this.o.redact ?? ((t: string) => t);
    const delivery: Delivery = {
      receiver: target.label,
      event: event.event,
      ok,
      attempts,
      ...(ok
        ? {}
        : {
            error: redact(
              `${target.label}: ${event.event} notification not delivered after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${error}`,
            ),
          }),
    };
    this.o.report?.(delivery);
    return delivery;
  }
}

/** Retry-After in seconds (an HTTP date is ignored: the backoff applies). */
function retryAfter(value: string | null): number | undefined {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

/** A fetch failure as one line, with the URL (which fetch may quote) cut out. */
function describeFetchError(err: unknown, url: string): string {
  const text = errorChain(err)
    .filter((m) => m !== "fetch failed")
    .join(": ");
  const line = (text || "request failed").split(url).join("[receiver]");
  return (err as Error)?.name === "TimeoutError" ? "timed out" : line;
}

function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
