/**
 * The etcd-backup.dev/v1alpha1 API as the operator reads and writes it: the two kinds, their spec (desired) and
 * status (observed). The CRDs in deploy/operator/crds/ are the schema the API server enforces; these types
 * mirror them, and `spec.ts` checks specs again so that an object the API server did not validate still ends
 * with a clear `InvalidSpec` instead of a crash.
 */

export const GROUP = "etcd-backup.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const BACKUP_KIND = "EtcdBackup";
export const BACKUP_PLURAL = "etcdbackups";
export const SCHEDULE_KIND = "EtcdBackupSchedule";
export const SCHEDULE_PLURAL = "etcdbackupschedules";

/** Held by EtcdBackups whose `deletionPolicy` is `Delete` until the stored object and manifest are gone. */
export const DELETE_FINALIZER = "etcd-backup.dev/delete-stored-backup";
/** Label on the EtcdBackups a schedule creates, holding the schedule's name. */
export const SCHEDULE_LABEL = "etcd-backup.dev/schedule";
/** Annotation on those EtcdBackups: the scheduled time they stand for (RFC 3339). */
export const SCHEDULED_AT_ANNOTATION = "etcd-backup.dev/scheduled-at";

/** A JSON merge patch (RFC 7386) of an object's fields: `null` removes a field. */
export type MergePatch<T> = { [K in keyof T]?: T[K] | null };

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface EtcdSourceSpec {
  endpoints: string[];
  /** A Secret with the CA bundle and the client certificate and key (kubernetes.io/tls keys by default). */
  tlsSecretRef?: { name: string; caKey?: string; certKey?: string; keyKey?: string };
  insecureSkipVerify?: boolean;
  dialTimeoutSeconds?: number;
}

export interface TalosSourceSpec {
  /** Use the Talos ServiceAccount mounted into the operator's pod (`/var/run/secrets/talos.dev`). */
  inCluster?: boolean;
  /** A Secret holding a talosconfig. */
  talosconfigSecretRef?: { name: string; key?: string };
  context?: string;
  endpoints?: string[];
  nodes?: string[];
}

/**
 * A control plane in the object's namespace (control-plane-refs/): a Talos operator or Cluster API
 * TalosControlPlane, a Cluster API KubeadmControlPlane, or a Cluster API Cluster (its spec.controlPlaneRef).
 */
export interface ControlPlaneRefSpec {
  apiVersion: string;
  kind: string;
  name: string;
}

export interface S3DestinationSpec {
  bucket: string;
  prefix?: string;
  region?: string;
  endpoint?: string;
  pathStyle?: boolean;
  credentialsSecretRef?: {
    name: string;
    accessKeyIdKey?: string;
    secretAccessKeyKey?: string;
    sessionTokenKey?: string;
  };
  caSecretRef?: { name: string; key?: string };
  insecureSkipVerify?: boolean;
  /** S3 Object Lock on the backup and its manifest (the bucket must have Object Lock enabled). */
  objectLock?: ObjectLockSpec;
}

/** Immutability of the backup and its manifest, the same fields for every object store. */
export interface ObjectLockSpec {
  mode?: "governance" | "compliance";
  days?: number;
  legalHold?: boolean;
}

/**
 * An Azure Blob Storage container and prefix. Credentials: a Secret holding the account key or a SAS token (and,
 * when `account` is not given, the account name); without one, the pod's workload identity or managed identity
 * (DefaultAzureCredential), which needs Storage Blob Data Contributor on the container.
 */
export interface AzureBlobDestinationSpec {
  container: string;
  prefix?: string;
  /** The storage account; absent: the Secret's `AZURE_STORAGE_ACCOUNT` (or the endpoint's path, for Azurite). */
  account?: string;
  /** The Blob service URL for sovereign clouds and emulators; absent: https://ACCOUNT.blob.core.windows.net. */
  endpoint?: string;
  credentialsSecretRef?: {
    name: string;
    /** Default AZURE_STORAGE_ACCOUNT; read only when `account` is not given. */
    accountNameKey?: string;
    /** Default AZURE_STORAGE_KEY. */
    accountKeyKey?: string;
    /** Default AZURE_STORAGE_SAS_TOKEN; used when the Secret has no account key. */
    sasTokenKey?: string;
  };
  /** Azure immutability on the backup and its manifest (the container must support it). */
  objectLock?: ObjectLockSpec;
}

/** A Google Cloud Storage bucket and prefix (gs://bucket/prefix). */
export interface GcsDestinationSpec {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  project?: string;
  /** A Secret holding a service-account key (JSON) under `key` (default key.json); absent: the pod's ADC. */
  credentialsSecretRef?: { name: string; key?: string };
  /** GCS object retention and/or a temporary hold on the backup and its manifest (object retention enabled). */
  objectLock?: ObjectLockSpec;
}

/** Where a backup goes: exactly one of S3, Azure Blob Storage or Google Cloud Storage. */
export interface DestinationSpec {
  s3?: S3DestinationSpec;
  azureBlob?: AzureBlobDestinationSpec;
  gcs?: GcsDestinationSpec;
}

export interface RecipientsSource {
  secretKeyRef?: SecretKeyRef;
  configMapKeyRef?: SecretKeyRef;
}

export interface EncryptionSpec {
  none?: boolean;
  recipients?: string[];
  recipientsFrom?: RecipientsSource[];
}

export interface EtcdBackupSpec {
  /**
   * The cluster name in the object's name; defaults to `source.controlPlaneRef.name`, else the schedule's or the
   * EtcdBackup's name.
   */
  clusterName?: string;
  source: { etcd?: EtcdSourceSpec; talos?: TalosSourceSpec; controlPlaneRef?: ControlPlaneRefSpec };
  /** Exactly one of `s3`, `azureBlob` and `gcs`. */
  destination: DestinationSpec;
  encryption: EncryptionSpec;
  compression?: "zstd" | "none";
  compressionLevel?: number;
  deletionPolicy?: "Retain" | "Delete";
  /** Failed attempts retried (with exponential backoff) before the backup stays Failed. */
  backoffLimit?: number;
}

export interface Condition {
  type: "Progressing" | "Ready" | "Failed";
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type BackupPhase = "Pending" | "Running" | "Succeeded" | "Failed";

export interface EtcdBackupStatus {
  phase?: BackupPhase;
  observedGeneration?: number;
  conditions?: Condition[];
  /** The object's key in the bucket (relative to the bucket, prefix included) and where it is. */
  key?: string;
  manifestKey?: string;
  location?: string;
  /** Bytes of the etcd database, and bytes stored after compression and encryption. */
  dbSize?: number;
  storedSize?: number;
  /** etcd revision of the snapshot, when known. */
  revision?: number;
  sha256?: string;
  startTime?: string;
  completionTime?: string;
  /** Failed attempts so far for this generation. */
  failedAttempts?: number;
  /** When the next attempt may start, while failed attempts are retried. */
  nextRetryTime?: string;
}

export interface EtcdBackup {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: EtcdBackupSpec;
  status?: EtcdBackupStatus;
}

export interface RetentionSpec {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** A span such as `7d`, `36h`, `2w`. */
  keepWithin?: string;
}

export interface EtcdBackupScheduleSpec {
  schedule: string;
  timeZone?: string;
  suspend?: boolean;
  concurrencyPolicy?: "Forbid" | "Allow" | "Replace";
  retention?: RetentionSpec;
  /** Failed EtcdBackup objects kept; older failed ones are deleted. */
  failedBackupsHistoryLimit?: number;
  /** Webhooks told about failures (and successes, stale schedules); their URLs come from Secrets. */
  notify?: NotifySpec;
  /**
   * Run the revision log (point-in-time recovery, `restore --at`) beside the schedule, as `daemon --continuous`
   * does, into the template's destination. etcd sources only (Talos' API has no watch).
   */
  continuous?: boolean;
  /** With `continuous`: close a log segment this often, the most a crash can lose (default 10). */
  segmentIntervalSeconds?: number;
  template: {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec: EtcdBackupSpec;
  };
}

/** Notifications of a schedule (src/notify/): the URLs carry tokens, so they are read from Secrets. */
export interface NotifySpec {
  /** Each key's value holds receiver URLs, one a line (`slack+https://...` for Slack's format). */
  urlsFrom: { secretKeyRef: { name: string; key: string } }[];
  /** Payload of URLs without a `slack+`/`json+` prefix (default json). */
  format?: "json" | "slack";
  /** Events sent (default failure). */
  on?: ("success" | "failure" | "stale")[];
  /** No success for this span is stale (default: twice the schedule's interval): `2h`, `1d`. */
  staleAfter?: string;
}

/** What a schedule already notified, so that each episode is told once. */
export interface NotificationStatus {
  /** When notifications were first looked at: earlier outcomes are not news. */
  since?: string;
  /** The last successful EtcdBackup a success event was decided for. */
  lastSuccessNotified?: string;
  /** The failure episode already told: the name of the success it follows (`-`: none). */
  failureNotifiedAfter?: string;
  /** The stale episode already told: the time it counts from (the last success, or the schedule's creation). */
  staleNotifiedFor?: string;
}

export interface ObjectRef {
  name: string;
  key?: string;
}

export interface EtcdBackupScheduleStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  lastSuccessfulBackup?: ObjectRef & { completionTime?: string };
  active?: ObjectRef[];
  /** The last successful backup retention was applied after, so each success prunes once. */
  lastPrunedAfter?: string;
  lastPruneTime?: string;
  notification?: NotificationStatus;
  /** With `spec.continuous`: what the revision log can restore to now. */
  pointInTime?: PointInTimeStatus;
}

/** The recoverable window of a schedule's revision log (its current chain). */
export interface PointInTimeStatus {
  /** The chain's full backup: restore --at/--revision reaches back to it. */
  recoverableFrom?: string;
  recoverableFromRevision?: number;
  /** The newest moment and revision in a closed segment. */
  recoverableTo?: string;
  recoverableToRevision?: number;
  /** The window as one line, with the log's last error if any (redacted). */
  message: string;
}

export interface EtcdBackupSchedule {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: EtcdBackupScheduleSpec;
  status?: EtcdBackupScheduleStatus;
}

/**
 * The reasons of conditions and Events: callers branch on these, never on a message. The condition objects
 * themselves are built in conditions.ts.
 */
export const Reason = {
  BackupPending: "BackupPending",
  BackupStarted: "BackupStarted",
  BackupCreated: "BackupCreated",
  BackupSkipped: "BackupSkipped",
  BackupReplaced: "BackupReplaced",
  BackupInProgress: "BackupInProgress",
  BackupCompleted: "BackupCompleted",
  BackupSucceeded: "BackupSucceeded",
  BackupFailed: "BackupFailed",
  RetryScheduled: "RetryScheduled",
  SecretNotFound: "SecretNotFound",
  KeyNotFound: "KeyNotFound",
  ConfigMapNotFound: "ConfigMapNotFound",
  InvalidSpec: "InvalidSpec",
  InvalidRecipient: "InvalidRecipient",
  SourceUnreachable: "SourceUnreachable",
  StoreFailed: "StoreFailed",
  Aborted: "Aborted",
  Scheduled: "Scheduled",
  Suspended: "Suspended",
  InvalidSchedule: "InvalidSchedule",
  PruneFailed: "PruneFailed",
  Pruned: "Pruned",
  Deleted: "Deleted",
  DeleteFailed: "DeleteFailed",
} as const;
