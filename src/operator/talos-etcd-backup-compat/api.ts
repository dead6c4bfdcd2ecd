import type { Condition, ObjectMeta } from "../api.ts";

/**
 * The Talos operator's backup kinds (alperencelik/talos-operator, `talos.alperen.cloud/v1alpha1`), served as
 * that operator defines them so that its users' YAML applies unchanged: the same fields and defaults, the same
 * status fields, the conditions Progressing/Ready/Failed with its reasons, and the same object keys. Only
 * `metadata.annotations` of ours (below) opt in to what that operator does not do.
 */

export const TALOS_GROUP = "talos.alperen.cloud";
export const TALOS_VERSION = "v1alpha1";
export const TALOS_API_VERSION = `${TALOS_GROUP}/${TALOS_VERSION}`;
export const TALOS_BACKUP_KIND = "TalosEtcdBackup";
export const TALOS_BACKUP_PLURAL = "talosetcdbackups";
export const TALOS_SCHEDULE_KIND = "TalosEtcdBackupSchedule";
export const TALOS_SCHEDULE_PLURAL = "talosetcdbackupschedules";
export const TALOS_CONTROL_PLANE_KIND = "TalosControlPlane";

/** The label the Talos operator puts on the backups a schedule creates (value: the schedule's name). */
export const TALOS_SCHEDULE_LABEL = "talos.alperen.cloud/etcd-backup-schedule";
/**
 * The Talos operator's finalizer: held until the stored object is deleted. Served too, so that objects it created
 * can still be deleted once its own controller is stopped.
 */
export const TALOS_BACKUP_FINALIZER = "talosetcdbackup.talos.alperen.cloud/finalizer";
/** Where the Talos operator stores snapshots: `<prefix>/<control plane>/etcd-snapshot-<time>.db`. */
export const TALOS_KEY_PREFIX = "talos-operator-etcd-backups";
/** `retention` when unset (the CRD's default). */
export const DEFAULT_RETENTION = 5;

/**
 * Opt-ins of ours, as annotations so that the spec stays the Talos operator's: age recipients (comma or space
 * separated) encrypt the object (`.db.age`), `zstd` compresses it (`.db.zst`). Without them the object is the
 * plain snapshot, as that operator writes it.
 */
export const RECIPIENTS_ANNOTATION = "etcd-backup.dev/age-recipients";
export const COMPRESSION_ANNOTATION = "etcd-backup.dev/compression";

/** The Talos operator's reasons; our own (SecretNotFound, ControlPlaneNotReady...) go in Events and messages. */
export const TalosReason = {
  BackupInProgress: "BackupInProgress",
  BackupCompleted: "BackupCompleted",
  BackupSucceeded: "BackupSucceeded",
  BackupFailed: "BackupFailed",
  ScheduleActive: "ScheduleActive",
  InvalidSchedule: "InvalidSchedule",
  BackupCreationFailed: "BackupCreationFailed",
} as const;

export interface SecretKeySelector {
  name: string;
  key: string;
  optional?: boolean;
}

export interface TalosEtcdBackupSpec {
  talosControlPlaneRef: { name: string };
  backupStorage: {
    s3?: {
      bucket: string;
      region: string;
      endpoint?: string;
      accessKeyID: SecretKeySelector;
      secretAccessKey: SecretKeySelector;
      insecureSkipTLSVerify?: boolean;
    };
  };
}

export interface TalosEtcdBackupStatus {
  /** The object's key in the bucket. */
  filename?: string;
  stateFilename?: string;
  conditions?: Condition[];
}

export interface TalosEtcdBackup {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: TalosEtcdBackupSpec;
  status?: TalosEtcdBackupStatus;
}

export interface TalosEtcdBackupScheduleSpec {
  schedule: string;
  backupTemplate: { spec: TalosEtcdBackupSpec };
  retention?: number;
  paused?: boolean;
}

export interface TalosEtcdBackupScheduleStatus {
  lastScheduleTime?: string;
  lastSuccessfulBackupTime?: string;
  nextScheduleTime?: string;
  activeBackups?: string[];
  conditions?: Condition[];
}

export interface TalosEtcdBackupSchedule {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: TalosEtcdBackupScheduleSpec;
  status?: TalosEtcdBackupScheduleStatus;
}
