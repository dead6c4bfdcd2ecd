import type { Logger } from "pino";
import { describeError } from "../../errors.ts";
import type { EventRecorder } from "../events.ts";
import { isAlreadyExists, isNotFound, type Kube } from "../kube.ts";
import {
  TALOS_BACKUP_PLURAL,
  TALOS_SCHEDULE_PLURAL,
  type TalosEtcdBackup,
  type TalosEtcdBackupSchedule,
  TalosReason,
} from "./api.ts";
import type { TalosBackupController } from "./backup-controller.ts";
import { decideTalosSchedule } from "./schedule-decision.ts";

export interface TalosScheduleControllerOptions {
  /** A Kube for the talos.alperen.cloud group. */
  kube: Kube;
  events: EventRecorder;
  log: Logger;
  backups: TalosBackupController;
  /** The TalosEtcdBackups this replica sees (the informer's cache). */
  cache: () => Iterable<TalosEtcdBackup>;
}

/**
 * Reconciles TalosEtcdBackupSchedules: applies `decideTalosSchedule` (create the due backup, expire the Ready
 * ones beyond retention after deleting what they stored) and writes the status; looks again at the next run.
 */
export class TalosScheduleController {
  private readonly o: TalosScheduleControllerOptions;

  constructor(options: TalosScheduleControllerOptions) {
    this.o = options;
  }

  async reconcile(key: string): Promise<number | undefined> {
    const [namespace, name] = key.split("/") as [string, string];
    let s: TalosEtcdBackupSchedule;
    try {
      s = await this.o.kube.get<TalosEtcdBackupSchedule>(TALOS_SCHEDULE_PLURAL, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (s.metadata.deletionTimestamp) return undefined;
    const now = new Date();
    const d = decideTalosSchedule({ schedule: s, backups: [...this.o.cache()], now });
    if (d.create) {
      try {
        await this.o.kube.create(TALOS_BACKUP_PLURAL, namespace, d.create);
        await this.o.events.record(
          s,
          "Normal",
          "BackupCreated",
          `created TalosEtcdBackup ${d.create.metadata.name}`,
        );
      } catch (err) {
        if (!isAlreadyExists(err)) {
          const message = `Failed to create backup: ${describeError(err)}`;
          await this.o.events.record(s, "Warning", TalosReason.BackupCreationFailed, message);
          throw err;
        }
      }
    }
    for (const old of d.expire) {
      try {
        await this.o.backups.deleteStored(old, this.o.log);
        await this.o.kube.delete(TALOS_BACKUP_PLURAL, namespace, old.metadata.name).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
        await this.o.events.record(
          s,
          "Normal",
          "Pruned",
          `retention: deleted ${old.metadata.name} and ${old.status?.filename ?? "its object"}`,
        );
      } catch (err) {
        // The object stays, so that the next reconcile tries again; nothing is left without its record.
        await this.o.events.record(
          s,
          "Warning",
          "PruneFailed",
          `retention: ${old.metadata.name}: ${describeError(err)}`,
        );
      }
    }
    await this.o.kube.patch(TALOS_SCHEDULE_PLURAL, namespace, name, { status: d.status }, true);
    if (d.requeueAfterMs === undefined) return undefined;
    return Math.max(50, d.requeueAfterMs - (Date.now() - now.getTime()));
  }
}
