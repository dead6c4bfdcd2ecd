import { Cron } from "croner";
import { CLUSTER_NAME_RULE, clusterNameProblem } from "../catalog/names.ts";
import { CALENDAR_RULES, type RetentionPolicy } from "../catalog/retention.ts";
import { type DurationBounds, durationProblem, MAX_TIMER_MS, parseDuration, parseSpan } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { NOTIFY_EVENTS, NOTIFY_FORMATS, notifyUrlProblem } from "../notify/target.ts";
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from "../store/azure-settings.ts";
import { CHUNK_GRANULE, MAX_CHUNK_SIZE } from "../store/gcs-settings.ts";
import {
  MAX_OBJECT_LOCK_DAYS,
  MAX_PART_SIZE,
  MIN_PART_SIZE,
  OBJECT_LOCK_MODES,
} from "../store/s3-settings.ts";
import { type Infer, type InputOf, type ValidationError, z } from "../validation.ts";
import { LISTEN_ADDRESS_PROBLEM, type ListenAddress, parseListenAddress } from "./listen-address.ts";
import { applyTalosBackupEnv, readTalosBackupEnv } from "./talos-backup.ts";

export { parseListenAddress } from "./listen-address.ts";

/*
 * One typed configuration for a backup job and for the daemon that schedules it.
 *
 * Two layers:
 * - `backupJobConfigSchema` (nested, typed values): what a job needs to run. The daemon builds it from its
 *   settings; the operator builds it from an EtcdBackup spec (with secrets resolved) and validates it with the
 *   same schema. `backupJobFromConfig` (job.ts) turns it into a source, a store, encryption and a policy.
 * - `daemonSettingsSchema` (flat, keys named after the CLI flags in camelCase): what flags, environment
 *   variables and a YAML file give, as strings or YAML values. `parseDaemonConfig` validates it, names every
 *   problem at once, and returns a `DaemonConfig` holding a `BackupJobConfig`.
 */

// ---------------------------------------------------------------------------------------------------------
// The job (nested)

const MiB = 1024 * 1024;

/**
 * How backup data is locked when written, on any object store (`ObjectLockSettings`: S3 Object Lock, GCS object
 * retention and temporary holds, Azure immutability); `days` may be left to the retention's `withinMs` (see
 * parseBackupJobConfig).
 */
export const objectLockSchema = z
  .object({
    mode: z.enum(OBJECT_LOCK_MODES).optional(),
    days: z.number().int().min(1).max(MAX_OBJECT_LOCK_DAYS).optional(),
    legalHold: z.boolean().optional(),
  })
  .strict();

export const s3SettingsSchema = z
  .object({
    endpoint: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    pathStyle: z.boolean().optional(),
    caFile: z.string().min(1).optional(),
    insecureSkipTlsVerify: z.boolean().optional(),
    partSize: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    sse: z.enum(["AES256", "aws:kms"]).optional(),
    sseKmsKeyId: z.string().min(1).optional(),
    storageClass: z.string().min(1).optional(),
    sdkChecksums: z.boolean().optional(),
    maxAttempts: z.number().int().min(1).optional(),
    retryBaseDelayMs: z.number().int().min(0).optional(),
    /**
     * The first place of the lock, when it was S3's only: still read (the job's top-level `objectLock` is the
     * one place now; parseBackupJobConfig moves this there), never written back.
     */
    objectLock: objectLockSchema.optional(),
  })
  .strict();

/** Azure Blob settings (`AzureSettings`); credentials are not here but in `azureSecrets`. */
export const azureSettingsSchema = z
  .object({
    account: z.string().min(1).optional(),
    endpoint: z.string().min(1).optional(),
    accountKeyFile: z.string().min(1).optional(),
    sasTokenFile: z.string().min(1).optional(),
    blockSize: z.number().int().min(MIN_BLOCK_SIZE).max(MAX_BLOCK_SIZE).optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    maxAttempts: z.number().int().min(1).optional(),
    retryBaseDelayMs: z.number().int().min(0).optional(),
  })
  .strict();

/** Google Cloud Storage settings for a `gs://` destination (src/store/gcs-settings.ts). */
export const gcsSettingsSchema = z
  .object({
    endpoint: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    chunkSize: z
      .number()
      .int()
      .min(CHUNK_GRANULE)
      .max(MAX_CHUNK_SIZE)
      .refine((n) => n % CHUNK_GRANULE === 0, "must be a multiple of 256 KiB")
      .optional(),
    maxAttempts: z.number().int().min(1).optional(),
    retryBaseDelayMs: z.number().int().min(0).optional(),
  })
  .strict();

const pemSchema = z.instanceof(Buffer);

export const etcdSourceConfigSchema = z.object({
  kind: z.literal("etcd"),
  endpoints: z.array(z.string().min(1)).min(1),
  cacert: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** PEM contents instead of files (the operator reads them from a Secret). */
  pem: z
    .object({ ca: pemSchema.optional(), cert: pemSchema.optional(), key: pemSchema.optional() })
    .optional(),
  insecureSkipTlsVerify: z.boolean().default(false),
  dialTimeoutMs: z.number().int().positive().max(MAX_TIMER_MS).default(5000),
  user: z.object({ name: z.string().min(1), password: z.string() }).optional(),
});

export const talosSourceConfigSchema = z.object({
  kind: z.literal("talos"),
  /** A talosconfig file; absent: $TALOSCONFIG, ~/.talos/config, then a Talos ServiceAccount's. */
  talosconfig: z.string().min(1).optional(),
  /** A talosconfig's contents instead of a file (the operator reads it from a Secret); `label` names it. */
  talosconfigText: z.object({ text: z.string().min(1), label: z.string().min(1) }).optional(),
  context: z.string().min(1).optional(),
  /** Overrides the context's endpoints when not empty. */
  endpoints: z.array(z.string().min(1)).default([]),
  /** Overrides the context's nodes when not empty. */
  nodes: z.array(z.string().min(1)).default([]),
});

export const retentionPolicySchema = z
  .object({
    last: z.number().int().min(1).optional(),
    hourly: z.number().int().min(1).optional(),
    daily: z.number().int().min(1).optional(),
    weekly: z.number().int().min(1).optional(),
    monthly: z.number().int().min(1).optional(),
    yearly: z.number().int().min(1).optional(),
    withinMs: z.number().int().positive().optional(),
  })
  .strict();

/**
 * etcd's static pod reached with Kubernetes credentials (`save --kubeconfig`): a helper pod on its node takes the
 * snapshot (src/source/kubernetes/).
 */
export const kubernetesSourceConfigSchema = z.object({
  kind: z.literal("kubernetes"),
  /** A kubeconfig file; absent: $KUBECONFIG, ~/.kube/config, then the pod's ServiceAccount. */
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
  /** The helper pod's image; absent: this release's image (DEFAULT_HELPER_IMAGE). */
  image: z.string().min(1).optional(),
});

/**
 * Notifications (src/notify/): receivers' URLs (secrets: never printed; a problem names the receiver by its
 * number), their default format, the events to send, and for the daemon how long without a success is stale.
 */
export const notifyConfigSchema = z
  .object({
    urls: z
      .array(
        z.string().superRefine((url, ctx) => {
          const why = notifyUrlProblem(url);
          if (why !== null) ctx.addIssue({ code: "custom", message: why });
        }),
      )
      .default([]),
    format: z.enum(NOTIFY_FORMATS).default("json"),
    on: z.array(z.enum(NOTIFY_EVENTS)).default(["failure"]),
    staleAfterMs: z.number().int().positive().optional(),
  })
  .strict();

/** An existing snapshot file (`save --from-file`): stored as if it had come from etcd. */
export const fileSourceConfigSchema = z.object({ kind: z.literal("file"), path: z.string().min(1) });

export const backupJobConfigSchema = z.object({
  /** Absent: the Talos context's name for a Talos source (as talos-backup does), else "etcd". */
  cluster: z
    .string()
    .superRefine((name, ctx) => {
      const problem = clusterNameProblem(name);
      if (problem !== null) ctx.addIssue({ code: "custom", message: `${problem} (${CLUSTER_NAME_RULE})` });
    })
    .optional(),
  source: z.discriminatedUnion("kind", [
    etcdSourceConfigSchema,
    talosSourceConfigSchema,
    fileSourceConfigSchema,
    kubernetesSourceConfigSchema,
  ]),
  /** A directory, `file:///path`, `s3://bucket/prefix` or `gs://bucket/prefix`; absent: talos-backup's BUCKET and S3_PREFIX. */
  destination: z.string().min(1).optional(),
  /**
   * `save --out`: write the plain snapshot (etcd's bytes and sha256 trailer, as `etcdctl snapshot save` writes
   * it) to this file, or to stdout for `-`, instead of a backup in a store. No compression, encryption or manifest.
   */
  output: z.string().min(1).optional(),
  s3: s3SettingsSchema.default({}),
  /**
   * S3 credentials and a CA bundle given as values (the operator reads them from Secrets); absent: the AWS SDK's
   * default chain and `s3.caFile`. Secret: never printed.
   */
  s3Secrets: z
    .object({
      credentials: z
        .object({
          accessKeyId: z.string().min(1),
          secretAccessKey: z.string().min(1),
          sessionToken: z.string().min(1).optional(),
        })
        .optional(),
      caPem: pemSchema.optional(),
    })
    .optional(),
  azure: azureSettingsSchema.default({}),
  /**
   * Azure credentials given as values (the operator reads them from a Secret); absent: the environment's
   * (AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_CONNECTION_STRING), then the SDK's default chain
   * (workload identity, managed identity). Secret: never printed.
   */
  azureSecrets: z
    .object({
      accountKey: z.string().min(1).optional(),
      sasToken: z.string().min(1).optional(),
      connectionString: z.string().min(1).optional(),
    })
    .strict()
    .optional(),
  gcs: gcsSettingsSchema.default({}),
  /**
   * Google credentials given as a value: a credentials file's contents (the operator reads a service-account key
   * from a Secret), `label` naming where it came from; absent: GOOGLE_APPLICATION_CREDENTIALS, else the rest of
   * Application Default Credentials (workload identity, the metadata server). Secret: never printed.
   */
  gcsSecrets: z.object({ credentialsJson: z.string().min(1), label: z.string().min(1) }).optional(),
  /**
   * Lock backup data when writing it, whatever the object store (job.ts gives it to the store's settings);
   * absent: nothing is locked by us. A directory destination cannot be locked.
   */
  objectLock: objectLockSchema.optional(),
  compression: z.enum(["zstd", "none"]).default("zstd"),
  level: z.number().int().min(1).max(19).optional(),
  encryption: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("none") }),
    z.object({
      kind: z.literal("age"),
      /** age1... public keys. */
      recipients: z.array(z.string().min(1)).default([]),
      recipientsFiles: z.array(z.string().min(1)).default([]),
      passphraseFile: z.string().min(1).optional(),
    }),
  ]),
  /** Keys to read backups back (verify, test restore); never needed to write them. */
  decryption: z
    .object({
      identityFiles: z.array(z.string().min(1)).default([]),
      passphraseFile: z.string().min(1).optional(),
    })
    .default({ identityFiles: [] }),
  /** null: the job does not prune. */
  retention: retentionPolicySchema.nullable().default(null),
  notify: notifyConfigSchema.default({ urls: [], format: "json", on: ["failure"] }),
  /** Incomplete leftovers younger than this are not removed by prune (an upload may be running). */
  incompleteGraceMs: z
    .number()
    .int()
    .nonnegative()
    .default(24 * 3_600_000),
});

export type BackupJobConfig = Infer<typeof backupJobConfigSchema>;
/** What the operator (or a test) writes before defaults are applied. */
export type BackupJobConfigInput = InputOf<typeof backupJobConfigSchema>;

/**
 * Validates a job config built in code (the operator's path); throws `UsageError` naming every problem.
 * `lockFlag` is how problems with the lock name it (`--object-lock`; `--s3-object-lock` for those who use it).
 */
export function parseBackupJobConfig(
  input: BackupJobConfigInput,
  lockFlag: LockFlag = input.objectLock === undefined && input.s3?.objectLock !== undefined
    ? "--s3-object-lock"
    : "--object-lock",
): BackupJobConfig {
  const parsed = backupJobConfigSchema.safeParse(input);
  if (!parsed.success) throw configError(parsed.error.issues.map((i) => problem(i.path, i.message)));
  const { objectLock: s3Lock, ...s3 } = parsed.data.s3;
  parsed.data.s3 = s3;
  const given = parsed.data.objectLock ?? s3Lock;
  if (parsed.data.objectLock && s3Lock && JSON.stringify(parsed.data.objectLock) !== JSON.stringify(s3Lock)) {
    throw configError(["objectLock: contradicts s3.objectLock (give the lock once, as objectLock)"]);
  }
  const lock = objectLockDefaults(given, parsed.data.retention, lockFlag);
  if (typeof lock === "string") throw configError([lock]);
  if (lock) parsed.data.objectLock = lock;
  else delete parsed.data.objectLock;
  if (lock && parsed.data.destination && !isObjectStore(parsed.data.destination)) {
    throw configError([
      `${lockFlag}: ${parsed.data.destination} is not an object store, nothing there can be locked (write to s3://, gs:// or azblob://, or drop ${lockFlag})`,
    ]);
  }
  const problems = encryptionProblems({
    encrypt: parsed.data.encryption.kind === "age",
    ...(parsed.data.encryption.kind === "age"
      ? {
          recipients:
            parsed.data.encryption.recipients.length + parsed.data.encryption.recipientsFiles.length,
          passphrase: parsed.data.encryption.passphraseFile !== undefined,
        }
      : {}),
  });
  if (problems.length > 0) throw configError(problems);
  return parsed.data;
}

/**
 * Object Lock's days, for every front end: given, they stand; absent with a mode, they are the retention's
 * `--keep-within` in whole days (rounded up), the time every backup is kept anyway, so that a lock never outlives
 * what the policy keeps by more than a day; with no `--keep-within` either, a problem (returned as its text).
 * A lock with neither mode nor legal hold is none.
 */
export function objectLockDefaults(
  lock: ObjectLockConfig | undefined,
  retention: RetentionPolicy | null,
  flag: LockFlag = "--object-lock",
): ObjectLockConfig | undefined | string {
  if (!lock || (lock.mode === undefined && !lock.legalHold)) {
    return lock?.days !== undefined ? `${flag}-days: needs ${flag} (governance or compliance)` : undefined;
  }
  if (lock.mode === undefined || lock.days !== undefined) return lock;
  if (retention?.withinMs !== undefined) {
    const days = Math.min(MAX_OBJECT_LOCK_DAYS, Math.max(1, Math.ceil(retention.withinMs / 86_400_000)));
    return { ...lock, days };
  }
  return `${flag}-days: is required with ${flag} ${lock.mode} (the daemon and the operator default it to --keep-within)`;
}

export type ObjectLockConfig = Infer<typeof objectLockSchema>;

/** The lock's flag as problems name it: the destination-neutral one, or the S3 name it had first. */
export type LockFlag = "--object-lock" | "--s3-object-lock";

/** A destination whose objects can be locked: s3://, gs:// or azblob:// (a directory cannot). */
export function isObjectStore(destination: string): boolean {
  return /^(s3|gs|azblob):\/\//i.test(destination);
}

/**
 * The encryption rules, for every front end: encryption is on unless explicitly off; on, it needs recipients
 * or a passphrase, not both; off, it contradicts any key given. `recipients` counts keys and key files.
 */
export function encryptionProblems(e: {
  encrypt: boolean;
  recipients?: number;
  passphrase?: boolean;
}): string[] {
  const recipients = e.recipients ?? 0;
  const passphrase = e.passphrase ?? false;
  if (!e.encrypt) {
    return recipients > 0 || passphrase
      ? ["--no-encrypt: contradicts the recipients given (drop --no-encrypt or the recipients)"]
      : [];
  }
  if (recipients === 0 && !passphrase) {
    return [
      "--recipient: no age recipient given: backups hold every Secret of the cluster and are encrypted by default " +
        "(pass --recipient age1..., --recipients-file, --passphrase-file, or --no-encrypt)",
    ];
  }
  if (passphrase && recipients > 0)
    return ["--passphrase-file: cannot be combined with recipients (use one or the other)"];
  return [];
}

// ---------------------------------------------------------------------------------------------------------
// The daemon's settings (flat, as flags, environment and a YAML file give them)

const str = z.string().trim().min(1, "must not be empty");
const bool = z.union([
  z.boolean(),
  z
    .string()
    .trim()
    .toLowerCase()
    .refine((v) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(v), "is not true or false")
    .transform((v) => ["true", "1", "yes", "on"].includes(v)),
]);
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .union([z.number(), z.string().trim()])
    .pipe(
      z.coerce
        .number<string | number>({ error: "is not a number" })
        .int("is not a whole number")
        .min(min, `must be at least ${min}`)
        .max(max, `must be at most ${max}`),
    );
type CoercedNumber = ReturnType<typeof z.coerce.number<string | number>>;
/**
 * A size in MiB (a number, or a string of one), fractions allowed, between min and max (`message` otherwise);
 * `more` adds checks of the number that run beside the range's.
 */
const mebibytes = (
  min: number,
  max: number,
  message: string,
  more: (n: CoercedNumber) => CoercedNumber = (n) => n,
) =>
  z
    .union([z.number(), z.string().trim()])
    .pipe(
      more(
        z.coerce.number<string | number>({ error: "is not a number" }).min(min, message).max(max, message),
      ),
    );
/** The immutability keys, the same at the top level and (their first home) in the `s3` group. */
const objectLockKeys = {
  objectLock: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(OBJECT_LOCK_MODES, { error: "is not governance or compliance" }))
    .optional(),
  objectLockDays: wholeNumber(1, MAX_OBJECT_LOCK_DAYS).optional(),
  legalHold: bool.optional(),
};
const list = z
  .union([z.array(z.string()), z.string()])
  .transform((v) =>
    (typeof v === "string" ? v.split(",") : v.flatMap((s) => s.split(",")))
      .map((s) => s.trim())
      .filter(Boolean),
  );
/** A duration (src/duration.ts: `30s`, `1m30s`, a bare number is seconds); by default a timer's, so bounded. */
const durationOf = (bounds: DurationBounds = {}) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const why = durationProblem(v, bounds);
    if (why !== null) {
      ctx.addIssue({ code: "custom", message: why });
      return z.NEVER;
    }
    return parseDuration(v)!;
  });
const duration = durationOf();
const span = z.string().transform((v, ctx) => {
  const ms = parseSpan(v);
  if (ms === null) {
    ctx.addIssue({ code: "custom", message: "is not a span of time (use units: 7d, 36h, 2w)" });
    return z.NEVER;
  }
  return ms;
});
const keepCount = wholeNumber(1);

/**
 * A job's settings, flat: every key is a CLI flag's name in camelCase (`--keep-last` is `keepLast`), as the
 * flags and environment of `save`, the daemon's flags, environment and YAML file give them.
 */
export const jobSettingsShape = {
  // What to back up.
  cluster: str.optional(),
  source: z.enum(["etcd", "talos", "kubernetes"]).default("etcd"),
  fromFile: str.optional(),
  endpoints: list.default(["127.0.0.1:2379"]),
  cacert: str.optional(),
  cert: str.optional(),
  key: str.optional(),
  insecureSkipTlsVerify: bool.default(false),
  dialTimeout: duration.default(5000),
  user: str.optional(),
  password: z.string().optional(),
  talosconfig: str.optional(),
  context: str.optional(),
  nodes: list.default([]),
  talosEndpoints: list.default([]),
  kubeconfig: str.optional(),
  image: str.optional(),
  // Where to.
  to: str.optional(),
  out: str.optional(),
  // Immutability on any object store (the `s3` group's objectLock, objectLockDays and legalHold are the first
  // names; both are read, and must not disagree).
  ...objectLockKeys,
  s3: z
    .object({
      endpoint: str.optional(),
      region: str.optional(),
      pathStyle: bool.optional(),
      caFile: str.optional(),
      insecureSkipTlsVerify: bool.optional(),
      partSizeMiB: mebibytes(
        MIN_PART_SIZE / MiB,
        MAX_PART_SIZE / MiB,
        "S3 parts are 5 MiB to 5 GiB",
      ).optional(),
      concurrency: wholeNumber(1, 64).optional(),
      sse: z.enum(["AES256", "aws:kms"]).optional(),
      sseKmsKeyId: str.optional(),
      storageClass: str.optional(),
      sdkChecksums: bool.optional(),
      ...objectLockKeys,
    })
    .strict()
    .default({}),
  azure: z
    .object({
      account: str.optional(),
      endpoint: str.optional(),
      accountKeyFile: str.optional(),
      sasTokenFile: str.optional(),
      blockSizeMiB: mebibytes(
        MIN_BLOCK_SIZE / MiB,
        MAX_BLOCK_SIZE / MiB,
        "Azure blocks are 1 MiB to 4000 MiB",
      ).optional(),
      concurrency: wholeNumber(1, 64).optional(),
    })
    .strict()
    .default({}),
  gcs: z
    .object({
      endpoint: str.optional(),
      project: str.optional(),
      chunkSizeMiB: mebibytes(0.25, 512, "GCS chunks are 0.25 MiB to 512 MiB", (n) =>
        n.refine((v) => Number.isInteger(v * 4), "must be a multiple of 0.25 MiB (256 KiB)"),
      ).optional(),
    })
    .strict()
    .default({}),
  // How.
  compress: z.enum(["zstd", "none"]).default("zstd"),
  level: wholeNumber(1, 19).optional(),
  recipient: list.default([]),
  recipientsFile: list.default([]),
  passphraseFile: str.optional(),
  encrypt: bool.default(true),
  identity: list.default([]),
  // Retention.
  keepLast: keepCount.optional(),
  keepHourly: keepCount.optional(),
  keepDaily: keepCount.optional(),
  keepWeekly: keepCount.optional(),
  keepMonthly: keepCount.optional(),
  keepYearly: keepCount.optional(),
  keepWithin: span.optional(),
  incompleteGrace: span.default(24 * 3_600_000),
  // Notifications (src/notify/).
  notify: list.default([]),
  notifyOn: list
    .pipe(z.array(z.enum(NOTIFY_EVENTS, { error: "use success, failure and/or stale" })))
    .default(["failure"]),
  notifyFormat: z.enum(NOTIFY_FORMATS).default("json"),
};

export const jobSettingsSchema = z.object(jobSettingsShape).strict();

/** The daemon's settings: a job's, plus its schedule, checks, serving and lifecycle. */
export const daemonSettingsSchema = z
  .object({
    ...jobSettingsShape,
    // Schedule.
    schedule: str,
    tz: str.optional(),
    jitter: durationOf({ positive: false }).optional(),
    // Checks.
    verify: bool.default(false),
    testRestoreEvery: wholeNumber(0).default(0),
    // Point-in-time recovery: the revision log beside the schedule (etcd-backup log's settings).
    continuous: bool.default(false),
    segmentInterval: duration.default(10_000),
    segmentMaxBytes: wholeNumber(1024).default(16 << 20),
    keepLogWithin: span.optional(),
    // Notifications: no success for this long is stale (default: twice the schedule's interval).
    notifyStaleAfter: durationOf({ maxMs: Number.MAX_SAFE_INTEGER }).optional(),
    // Serving and lifecycle.
    metricsAddr: str.default(":9090"),
    // Compared with an age, never a timer: a monthly schedule needs more than a timer's 24 days.
    readyMaxAge: durationOf({ maxMs: Number.MAX_SAFE_INTEGER }).optional(),
    shutdownGrace: durationOf({ positive: false }).default(30_000),
    retryBackoff: durationOf({ positive: false }).default(5_000),
    retryBackoffMax: duration.default(300_000),
    logFormat: z.enum(["auto", "json", "pretty"]).default("auto"),
  })
  .strict();

/** What flags, environment and a config file give, before validation. */
export type DaemonSettingsInput = InputOf<typeof daemonSettingsSchema>;

export interface DaemonConfig {
  job: BackupJobConfig;
  schedule: {
    /** Cron with optional seconds (croner syntax). */
    cron: string;
    timeZone?: string;
    /** Each run starts a random delay of up to this after its scheduled time. */
    jitterMs: number;
  };
  /** Structurally check each new backup after writing it. */
  verify: boolean;
  /** Every Nth run also test-restores the new backup into a temporary etcd; 0: never. */
  testRestoreEvery: number;
  /** Run the revision log (point-in-time recovery) beside the schedule; null: off. */
  continuous?: { segmentIntervalMs: number; segmentMaxBytes: number } | null;
  /** Retention of the revision log: every revision restorable only this far back; undefined: no window. */
  keepLogWithinMs?: number;
  metrics: ListenAddress;
  /** /readyz fails when the last success is older than this; undefined: twice the schedule's interval. */
  readyMaxAgeMs: number | undefined;
  shutdownGraceMs: number;
  retry: { initialMs: number; maxMs: number };
  logFormat: "auto" | "json" | "pretty";
}

/**
 * Validates a job's flat settings (`save`'s flags and environment, after `completeSettings`) and builds its
 * configuration. Throws one `UsageError` that names every problem (field-level and between fields) by its
 * flag, never with a setting's value (it may be a secret).
 */
export function parseJobSettings(
  settings: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): BackupJobConfig {
  const input = applyTalosBackupEnv(settings, env);
  const parsed = jobSettingsSchema.safeParse(input);
  const problems = [...schemaProblems(input, parsed), ...jobSettingsProblems(input, env)];
  if (parsed.success && parsed.data.notifyOn.includes("stale")) {
    problems.push(
      "--notify-on: stale needs a schedule to miss, and save runs once (use it with the daemon, or watch save's success events)",
    );
  }
  if (problems.length > 0 || !parsed.success) throw configError(problems);
  return jobConfigFromSettings(parsed.data);
}

/**
 * Validates the daemon's settings and builds the configuration: the job's part exactly as `parseJobSettings`
 * reads it, plus the schedule, checks and serving. Throws one `UsageError` naming every problem by its flag,
 * never with a setting's value.
 */
export function parseDaemonConfig(
  settings: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): DaemonConfig {
  const input = applyTalosBackupEnv(settings, env);
  const parsed = daemonSettingsSchema.safeParse(input);
  const problems = [...schemaProblems(input, parsed), ...jobSettingsProblems(input, env)];
  const raw = input as Record<string, unknown>;
  if (typeof raw.schedule === "string" && raw.schedule.trim()) {
    const reason = cronProblem(raw.schedule, typeof raw.tz === "string" ? raw.tz : undefined);
    if (reason) problems.push(`--schedule: ${reason}`);
  }
  if (typeof raw.metricsAddr === "string" && parseListenAddress(raw.metricsAddr) === null) {
    problems.push(`--metrics-addr: ${LISTEN_ADDRESS_PROBLEM}`);
  }
  if (raw.continuous === true || String(raw.continuous).toLowerCase() === "true") {
    if (
      raw.source === "talos" ||
      raw.source === "kubernetes" ||
      (raw.fromFile !== undefined && raw.fromFile !== "")
    ) {
      problems.push(
        "--continuous: the revision log needs an etcd source it can watch (Talos' apid exposes snapshots but no watch; point --endpoints at etcd's client port)",
      );
    }
  }
  if (raw.out !== undefined && raw.out !== "")
    problems.push("--out: only for save (the daemon writes backups to --to)");
  if (parsed.success && parsed.data.segmentInterval < 100) {
    problems.push("--segment-interval: must be at least 100ms");
  }
  if (problems.length > 0 || !parsed.success) throw configError(problems);
  const s = parsed.data;
  return {
    job: jobConfigFromSettings(s, s.notifyStaleAfter),
    schedule: { cron: s.schedule, ...(s.tz ? { timeZone: s.tz } : {}), jitterMs: s.jitter ?? 0 },
    verify: s.verify,
    testRestoreEvery: s.testRestoreEvery,
    continuous: s.continuous
      ? { segmentIntervalMs: s.segmentInterval, segmentMaxBytes: s.segmentMaxBytes }
      : null,
    ...(s.keepLogWithin !== undefined ? { keepLogWithinMs: s.keepLogWithin } : {}),
    metrics: parseListenAddress(s.metricsAddr)!,
    readyMaxAgeMs: s.readyMaxAge,
    shutdownGraceMs: s.shutdownGrace,
    retry: { initialMs: Math.max(1, s.retryBackoff), maxMs: Math.max(s.retryBackoff, s.retryBackoffMax) },
    logFormat: s.logFormat,
  };
}

/** The field-level problems of a schema parse, each named by its flag. */
function schemaProblems(
  input: Record<string, unknown>,
  parsed: { success: boolean; error?: ValidationError | undefined },
): string[] {
  const problems: string[] = [];
  for (const issue of parsed.error?.issues ?? []) {
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys ?? []) problems.push(`${settingName([...issue.path, k])}: unknown setting`);
    } else {
      const missing = issue.code === "invalid_type" && valueAt(input, issue.path) === undefined;
      problems.push(problem(issue.path, missing ? "is required" : issue.message));
    }
  }
  return problems;
}

/** Checks between a job's settings, on the raw input so they are reported together with the field problems. */
function jobSettingsProblems(
  raw: Record<string, unknown>,
  env: Record<string, string | undefined>,
): string[] {
  const given = (k: string) =>
    raw[k] !== undefined && raw[k] !== "" && !(Array.isArray(raw[k]) && raw[k].length === 0);
  const count = (k: string) => (Array.isArray(raw[k]) ? raw[k].length : given(k) ? 1 : 0);
  const problems: string[] = [];
  if (given("out")) {
    // A plain snapshot file, as `etcdctl snapshot save` (and ocne cluster backup --out) writes it.
    if (given("to"))
      problems.push(
        "--out: cannot be combined with --to (--out writes a plain snapshot file, --to a backup)",
      );
    if (given("notify"))
      problems.push("--notify: only with --to (--out writes a plain snapshot file and sends nothing)");
    for (const k of ["recipient", "recipientsFile", "passphraseFile"])
      if (count(k) > 0)
        problems.push(
          `--${kebab(k)}: --out writes a plain, unencrypted snapshot (use --to for an encrypted backup)`,
        );
  } else {
    problems.push(
      ...encryptionProblems({
        encrypt: !(raw.encrypt === false || String(raw.encrypt).toLowerCase() === "false"),
        recipients: count("recipient") + count("recipientsFile"),
        passphrase: given("passphraseFile"),
      }),
    );
    if (!given("to") && !readTalosBackupEnv(env).present) {
      problems.push(
        "--to: is required (a directory, s3://bucket/prefix, gs://bucket/prefix or azblob://container/prefix; or talos-backup's BUCKET; or --out FILE)",
      );
    }
  }
  const notify = raw.notify;
  const urls = (Array.isArray(notify) ? notify : typeof notify === "string" ? [notify] : [])
    .flatMap((u) => String(u).split(","))
    .filter((u) => u.trim());
  for (const [i, url] of urls.entries()) {
    const why = notifyUrlProblem(url);
    if (why !== null) problems.push(`--notify #${i + 1}: ${why}`);
  }
  if (given("password") && !given("user")) problems.push("--password: needs --user");
  if (given("kubeconfig") && raw.source !== undefined && raw.source !== "kubernetes")
    problems.push(`--kubeconfig: cannot be combined with --source ${String(raw.source)}`);
  if (given("image") && raw.source !== "kubernetes")
    problems.push("--image: only for the kubeconfig backup (--kubeconfig)");
  if (given("fromFile") && (raw.source === "talos" || raw.source === "kubernetes"))
    problems.push(`--from-file: cannot be combined with --source ${String(raw.source)}`);
  // The lock under both names: the same setting twice must agree.
  const s3 = raw.s3 && typeof raw.s3 === "object" ? (raw.s3 as Record<string, unknown>) : {};
  for (const [k, flag] of [
    ["objectLock", "--object-lock"],
    ["objectLockDays", "--object-lock-days"],
  ] as const) {
    const neutral = raw[k];
    const first = s3[k];
    const text = (v: unknown) => String(v).trim().toLowerCase();
    if (
      neutral !== undefined &&
      neutral !== "" &&
      first !== undefined &&
      first !== "" &&
      text(neutral) !== text(first)
    )
      problems.push(`${flag}: contradicts --s3-${flag.slice(2)} (give only ${flag})`);
  }
  return problems;
}

/** A job's configuration from its validated flat settings. */
function jobConfigFromSettings(s: Infer<typeof jobSettingsSchema>, staleAfterMs?: number): BackupJobConfig {
  const retention: RetentionPolicy = {};
  if (s.keepLast !== undefined) retention.last = s.keepLast;
  for (const rule of CALENDAR_RULES) {
    const v = s[`keep${rule[0]!.toUpperCase()}${rule.slice(1)}` as "keepHourly"];
    if (v !== undefined) retention[rule] = v;
  }
  if (s.keepWithin !== undefined) retention.withinMs = s.keepWithin;

  let user: { name: string; password: string } | undefined;
  if (s.user) {
    const i = s.user.indexOf(":");
    user =
      i >= 0
        ? { name: s.user.slice(0, i), password: s.user.slice(i + 1) }
        : { name: s.user, password: s.password ?? "" };
  }
  const s3: BackupJobConfig["s3"] = {};
  const { objectLock: s3LockMode, objectLockDays: s3LockDays, legalHold: s3LegalHold, ...s3Flat } = s.s3;
  for (const [k, v] of Object.entries(s3Flat)) {
    if (v === undefined) continue;
    if (k === "partSizeMiB") s3.partSize = Math.round((v as number) * MiB);
    else (s3 as Record<string, unknown>)[k] = v;
  }
  // The lock, from either name (jobSettingsProblems made sure they agree); problems name the one used.
  const lockMode = s.objectLock ?? s3LockMode;
  const lockDays = s.objectLockDays ?? s3LockDays;
  const legalHold = s.legalHold === true || s3LegalHold === true;
  const lockFlag: LockFlag =
    s.objectLock === undefined &&
    s.objectLockDays === undefined &&
    s.legalHold === undefined &&
    (s3LockMode !== undefined || s3LockDays !== undefined || s3LegalHold !== undefined)
      ? "--s3-object-lock"
      : "--object-lock";
  const objectLock =
    lockMode !== undefined || lockDays !== undefined || legalHold
      ? {
          ...(lockMode !== undefined ? { mode: lockMode } : {}),
          ...(lockDays !== undefined ? { days: lockDays } : {}),
          ...(legalHold ? { legalHold: true } : {}),
        }
      : undefined;
  const azure: BackupJobConfig["azure"] = {};
  for (const [k, v] of Object.entries(s.azure)) {
    if (v === undefined) continue;
    if (k === "blockSizeMiB") azure.blockSize = Math.round((v as number) * MiB);
    else (azure as Record<string, unknown>)[k] = v;
  }
  const gcs: BackupJobConfig["gcs"] = {};
  if (s.gcs.endpoint) gcs.endpoint = s.gcs.endpoint;
  if (s.gcs.project) gcs.project = s.gcs.project;
  if (s.gcs.chunkSizeMiB !== undefined) gcs.chunkSize = Math.round(s.gcs.chunkSizeMiB * MiB);
  return parseBackupJobConfig(
    {
      ...(s.cluster !== undefined ? { cluster: s.cluster } : {}),
      source: s.fromFile
        ? { kind: "file", path: s.fromFile }
        : s.source === "kubernetes"
          ? {
              kind: "kubernetes",
              ...(s.kubeconfig ? { kubeconfig: s.kubeconfig } : {}),
              ...(s.context ? { context: s.context } : {}),
              ...(s.image ? { image: s.image } : {}),
            }
          : s.source === "talos"
            ? {
                kind: "talos",
                ...(s.talosconfig ? { talosconfig: s.talosconfig } : {}),
                ...(s.context ? { context: s.context } : {}),
                endpoints: s.talosEndpoints,
                nodes: s.nodes,
              }
            : {
                kind: "etcd",
                endpoints: s.endpoints,
                ...(s.cacert ? { cacert: s.cacert } : {}),
                ...(s.cert ? { cert: s.cert } : {}),
                ...(s.key ? { key: s.key } : {}),
                insecureSkipTlsVerify: s.insecureSkipTlsVerify,
                dialTimeoutMs: s.dialTimeout,
                ...(user ? { user } : {}),
              },
      ...(s.to !== undefined ? { destination: s.to } : {}),
      ...(s.out !== undefined ? { output: s.out } : {}),
      s3,
      azure,
      gcs,
      ...(objectLock ? { objectLock } : {}),
      compression: s.compress,
      ...(s.level !== undefined ? { level: s.level } : {}),
      encryption:
        s.encrypt && s.out === undefined
          ? {
              kind: "age",
              recipients: s.recipient,
              recipientsFiles: s.recipientsFile,
              ...(s.passphraseFile ? { passphraseFile: s.passphraseFile } : {}),
            }
          : { kind: "none" },
      decryption: {
        identityFiles: s.identity,
        // A passphrase decrypts what it encrypted.
        ...(s.passphraseFile ? { passphraseFile: s.passphraseFile } : {}),
      },
      retention: Object.keys(retention).length > 0 ? retention : null,
      notify: {
        urls: s.notify,
        format: s.notifyFormat,
        on: [...new Set(s.notifyOn)],
        ...(staleAfterMs !== undefined ? { staleAfterMs } : {}),
      },
      incompleteGraceMs: s.incompleteGrace,
    },
    lockFlag,
  );
}

/** Why a cron expression (with optional seconds) or time zone cannot be used, or null when it can. */
export function cronProblem(pattern: string, timeZone?: string): string | null {
  try {
    const cron = new Cron(pattern, { paused: true, ...(timeZone ? { timezone: timeZone } : {}) });
    if (!cron.nextRun()) return "never runs";
    return null;
  } catch (err) {
    const msg = (err as Error).message;
    if (timeZone && /timezone/i.test(msg)) return `unknown time zone ${JSON.stringify(timeZone)} (see --tz)`;
    return `is not a cron expression: ${msg
      .replace(/^CronPattern:\s*/, "")
      .split(". ")[0]!
      .replace(/\.$/, "")}`;
  }
}

/** The flag a settings path stands for: `keepLast` is `--keep-last`, `s3.partSizeMiB` is `--s3-part-size`. */
export function settingName(path: readonly PropertyKey[]): string {
  const [head, sub] = path.map(String);
  if (!head) return "configuration";
  if (head === "talosEndpoints") return "-e";
  // A receiver's URL is a secret: it is named by its number, never by its value.
  if (head === "notify" && path.length > 1) {
    const index = path.find((p) => typeof p === "number");
    if (index !== undefined) return `--notify #${Number(index) + 1}`;
  }
  if (head === "notifyOn") return "--notify-on";
  if (head === "encrypt") return "--no-encrypt";
  if (head === "s3" && sub) {
    const flag = { caFile: "ca", partSizeMiB: "part-size" }[sub] ?? kebab(sub);
    return `--s3-${flag}`;
  }
  if (head === "azure" && sub) return `--azure-${kebab(sub === "blockSizeMiB" ? "blockSize" : sub)}`;
  if (head === "gcs" && sub) return `--gcs-${{ chunkSizeMiB: "chunk-size" }[sub] ?? kebab(sub)}`;
  return path.length > 1 && head !== "s3" && head !== "azure" && head !== "gcs"
    ? path.map(String).join(".")
    : `--${kebab(head)}`;
}

function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path)
    cur = cur && typeof cur === "object" ? (cur as Record<PropertyKey, unknown>)[k] : undefined;
  return cur;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function problem(path: readonly PropertyKey[], message: string): string {
  return `${settingName(path)}: ${message}`;
}

function configError(problems: string[]): UsageError {
  const unique = [...new Set(problems)];
  // One problem that says what to do reads best alone: `--dial-timeout: longer than ... (use a shorter duration)`.
  if (unique.length === 1 && unique[0]!.endsWith(")")) return new UsageError(unique[0]!);
  return new UsageError(
    `invalid configuration: ${unique.length} problem${unique.length === 1 ? "" : "s"}: ${unique.join("; ")}`,
    "fix the flags, environment variables or config file named above",
  );
}
