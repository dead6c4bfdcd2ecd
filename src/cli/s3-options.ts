import { type Command, Option } from "commander";
import {
  legalHoldFromEnv,
  mergeS3Settings,
  type ObjectLockMode,
  parseConcurrency,
  parseObjectLockDays,
  parseObjectLockMode,
  parsePartSizeMiB,
  parseSse,
  type S3Settings,
  s3SettingsFromEnv,
} from "../store/s3-settings.ts";

/** The values commander collects for the options `addS3Options` adds. */
export interface S3OptionValues {
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3Ca?: string;
  s3InsecureSkipTlsVerify?: boolean;
  s3PartSize?: number;
  s3Concurrency?: number;
  s3Sse?: "AES256" | "aws:kms";
  s3SseKmsKeyId?: string;
  s3StorageClass?: string;
  s3SdkChecksums?: boolean;
  s3ObjectLock?: ObjectLockMode;
  s3ObjectLockDays?: number;
  s3LegalHold?: boolean;
}

/**
 * Adds `--s3-object-lock MODE`, `--s3-object-lock-days N` and `--s3-legal-hold` (each also from its
 * ETCD_BACKUP_S3_* variable) to a command that writes backups. `save` and the daemon may leave the days to
 * --keep-within (config/schema.ts); `log` must give them.
 */
export function addObjectLockOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--s3-object-lock <mode>",
        "write backups, manifests and log segments under S3 Object Lock: governance or compliance",
      )
        .argParser((v) => parseObjectLockMode(v, "--s3-object-lock"))
        .env("ETCD_BACKUP_S3_OBJECT_LOCK")
        .helpGroup("S3:"),
    )
    .addOption(
      new Option(
        "--s3-object-lock-days <n>",
        "days each object stays locked from its upload (the daemon defaults to --keep-within)",
      )
        .argParser((v) => parseObjectLockDays(v, "--s3-object-lock-days"))
        .env("ETCD_BACKUP_S3_OBJECT_LOCK_DAYS")
        .helpGroup("S3:"),
    )
    .addOption(
      new Option(
        "--s3-legal-hold",
        "also put a legal hold on them, kept until someone lifts it (env: ETCD_BACKUP_S3_LEGAL_HOLD=true)",
      ).helpGroup("S3:"),
    );
}

/**
 * Adds the S3 flags to a command and returns it. Numbers and the encryption mode are validated while parsing;
 * a bad value is a usage error.
 */
export function addS3Options(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        "--s3-endpoint <url>",
        "S3-compatible endpoint (env AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL)",
      ).helpGroup("S3:"),
    )
    .addOption(
      new Option("--s3-region <region>", "region (env AWS_REGION, default us-east-1)").helpGroup("S3:"),
    )
    .addOption(
      new Option(
        "--s3-path-style",
        "address buckets as https://host/bucket (automatic for IP and localhost)",
      ).helpGroup("S3:"),
    )
    .addOption(new Option("--s3-ca <file>", "PEM bundle of CAs to trust for the endpoint").helpGroup("S3:"))
    .addOption(
      new Option(
        "--s3-insecure-skip-tls-verify",
        "do not verify the endpoint's certificate (dangerous)",
      ).helpGroup("S3:"),
    )
    .addOption(
      new Option("--s3-part-size <MiB>", "multipart part size, at least 5 (default 8)")
        .argParser((v) => parsePartSizeMiB(v, "--s3-part-size"))
        .helpGroup("S3:"),
    )
    .addOption(
      new Option("--s3-concurrency <n>", "parts uploaded at once (default 4)")
        .argParser((v) => parseConcurrency(v, "--s3-concurrency"))
        .helpGroup("S3:"),
    )
    .addOption(
      new Option("--s3-sse <mode>", "server-side encryption")
        .choices(["AES256", "aws:kms"])
        .argParser((v) => parseSse(v, "--s3-sse"))
        .helpGroup("S3:"),
    )
    .addOption(new Option("--s3-sse-kms-key-id <id>", "KMS key for --s3-sse aws:kms").helpGroup("S3:"))
    .addOption(new Option("--s3-storage-class <class>", "storage class, e.g. STANDARD_IA").helpGroup("S3:"))
    .addOption(
      new Option(
        "--s3-sdk-checksums",
        "send and check the AWS SDK's default checksums (not all services accept them)",
      ).helpGroup("S3:"),
    );
}

/**
 * The S3 settings the flags give, over those of the environment (`s3SettingsFromEnv`). Throws `UsageError` for an
 * environment value that does not parse.
 */
export function s3SettingsFromOptions(
  opts: S3OptionValues,
  env: NodeJS.ProcessEnv = process.env,
): S3Settings {
  const flags: S3Settings = {};
  if (opts.s3Endpoint) flags.endpoint = opts.s3Endpoint;
  if (opts.s3Region) flags.region = opts.s3Region;
  if (opts.s3PathStyle) flags.pathStyle = true;
  if (opts.s3Ca) flags.caFile = opts.s3Ca;
  if (opts.s3InsecureSkipTlsVerify) flags.insecureSkipTlsVerify = true;
  if (opts.s3PartSize !== undefined) flags.partSize = opts.s3PartSize;
  if (opts.s3Concurrency !== undefined) flags.concurrency = opts.s3Concurrency;
  if (opts.s3Sse) flags.sse = opts.s3Sse;
  if (opts.s3SseKmsKeyId) flags.sseKmsKeyId = opts.s3SseKmsKeyId;
  if (opts.s3StorageClass) flags.storageClass = opts.s3StorageClass;
  if (opts.s3SdkChecksums) flags.sdkChecksums = true;
  const legalHold = opts.s3LegalHold === true || legalHoldFromEnv(env) === true;
  if (opts.s3ObjectLock || opts.s3ObjectLockDays !== undefined || legalHold) {
    flags.objectLock = {
      ...(opts.s3ObjectLock ? { mode: opts.s3ObjectLock } : {}),
      ...(opts.s3ObjectLockDays !== undefined ? { days: opts.s3ObjectLockDays } : {}),
      ...(legalHold ? { legalHold: true } : {}),
    };
  }
  return mergeS3Settings(s3SettingsFromEnv(env), flags);
}
