import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { notifyConfigSchema } from "../config/schema.ts";
import { describeError } from "../errors.ts";
import type { NotifyEvent } from "../notify/payload.ts";
import { Notifier } from "../notify/sender.ts";
import { notifyTargets, secretForms } from "../notify/target.ts";
import type { Redactor } from "../observability/redact.ts";
import type { Infer } from "../validation.ts";
import type { EtcdBackupSchedule, NotifySpec } from "./api.ts";
import type { EventRecorder } from "./events.ts";
import { type ConfigReader, type ResolveContext, secretKey } from "./resolve.ts";

/** The Event reason when a notification could not be sent (the receiver is named by its label only). */
export const NOTIFICATION_FAILED = "NotificationFailed";

/**
 * `spec.notify` in the one notification configuration (config/schema.ts `notifyConfigSchema`): the URLs read
 * from the Secrets it names (one a line), the format, the events. Every form of each URL is registered with
 * `redactor` before anything else happens to it.
 */
export async function notifyConfigFromSpec(
  spec: NotifySpec,
  ctx: ResolveContext,
  redactor: Redactor,
): Promise<Infer<typeof notifyConfigSchema>> {
  const urls: string[] = [];
  for (const [i, from] of spec.urlsFrom.entries()) {
    const ref = from.secretKeyRef;
    const text = (await secretKey(ctx, ref.name, ref.key, `spec.notify.urlsFrom[${i}]`)).toString("utf8");
    for (const line of text.split(/\r?\n/).map((l) => l.trim())) {
      if (!line || line.startsWith("#")) continue;
      redactor.add(...secretForms(line));
      urls.push(line);
    }
  }
  const parsed = notifyConfigSchema.safeParse({
    urls,
    ...(spec.format ? { format: spec.format } : {}),
    ...(spec.on ? { on: spec.on } : {}),
  });
  if (!parsed.success) {
    // Zod's messages name the receiver by its index, never its value.
    const problem = parsed.error.issues
      .map(
        (i) =>
          `${i.path[0] === "urls" ? `receiver #${Number(i.path[1]) + 1}` : i.path.join(".")}: ${i.message}`,
      )
      .join("; ");
    throw new Error(`spec.notify.urlsFrom: ${problem}`);
  }
  return parsed.data;
}

/**
 * Sends a schedule's notifications: resolves `spec.notify` (the Secrets are read at each send, so a rotated
 * webhook is picked up), posts the events, and reports what could not be delivered as a Warning Event on the
 * schedule and a log line, both naming the receiver by its label. Never throws.
 */
export class ScheduleNotifier {
  private readonly o: {
    reader: ConfigReader;
    events: EventRecorder;
    log: Logger;
    redactor: Redactor;
    registry?: Registry;
  };

  constructor(options: ScheduleNotifier["o"]) {
    this.o = options;
  }

  async send(schedule: EtcdBackupSchedule, events: NotifyEvent[], signal: AbortSignal): Promise<void> {
    const spec = schedule.spec.notify;
    if (!spec || events.length === 0) return;
    const { namespace, name } = schedule.metadata;
    const log = this.o.log.child({ schedule: `${namespace}/${name}` });
    const warn = async (message: string) => {
      log.warn({ err: message }, "notification failed");
      await this.o.events.record(schedule, "Warning", NOTIFICATION_FAILED, message).catch(() => undefined);
    };
    let config: Infer<typeof notifyConfigSchema>;
    try {
      config = await notifyConfigFromSpec(
        spec,
        { namespace, reader: this.o.reader, warn: (line) => log.warn(line) },
        this.o.redactor,
      );
    } catch (err) {
      await warn(this.o.redactor.redact(`cannot notify: ${describeError(err)}`));
      return;
    }
    const notifier = new Notifier({
      targets: notifyTargets(config.urls, config.format),
      on: config.on,
      redact: (text) => this.o.redactor.redact(text),
      ...(this.o.registry ? { registry: this.o.registry } : {}),
    });
    for (const event of events) {
      for (const d of await notifier.notify(event, signal)) {
        if (d.ok)
          log.info({ receiver: d.receiver, event: d.event, attempts: d.attempts }, "notification sent");
        else await warn(d.error ?? `${d.receiver}: not delivered`);
      }
    }
  }
}
