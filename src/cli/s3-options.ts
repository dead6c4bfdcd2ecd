import { type Command, Option } from "commander";
import {
  mergeS3Settings,
  parseConcurrency,
  parsePartSizeMiB,
  parseSse,
  type S3Settings,
  s3SettingsFromEnv,
} from "../store/s3-settings.ts";
import { type ObjectLockOptionValues, objectLockFromOptions } from "./object-lock-options.ts";

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
      new Option("--s3-part-size <MiB>", "multipart part size, at least 5 (default 5)")
        .argParser((v) => parsePartSizeMiB(v, "--s3-part-size"))
        .helpGroup("S3:"),
    )
    .addOption(
      new Option("--s3-concurrency <n>", "parts uploaded at once (default 2)")
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
 * The S3 settings the flags give, over those of the environment (`s3SettingsFromEnv`), with the lock the
 * object-lock flags ask for (object-lock-options.ts). Throws `UsageError` for an environment value that does not
 * parse.
 */
export function s3SettingsFromOptions(
  opts: S3OptionValues & ObjectLockOptionValues,
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
  const objectLock = objectLockFromOptions(opts, env);
  if (objectLock) flags.objectLock = objectLock;
  return mergeS3Settings(s3SettingsFromEnv(env), flags);
}
