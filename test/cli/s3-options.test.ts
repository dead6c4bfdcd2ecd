import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Command } from "commander";
import { addS3Options, type S3OptionValues, s3SettingsFromOptions } from "../../src/cli/s3-options.ts";
import { UsageError } from "../../src/errors.ts";

const MiB = 1024 * 1024;

function parse(args: string[]): S3OptionValues {
  const cmd = addS3Options(new Command("save").exitOverride().configureOutput({ writeErr: () => {} }));
  cmd.parse(args, { from: "user" });
  return cmd.opts<S3OptionValues>();
}

describe("addS3Options", () => {
  test("every flag parses into its value", () => {
    const opts = parse([
      "--s3-endpoint",
      "https://minio.example:9000",
      "--s3-region",
      "eu-central-1",
      "--s3-path-style",
      "--s3-ca",
      "/etc/ca.pem",
      "--s3-insecure-skip-tls-verify",
      "--s3-part-size",
      "64",
      "--s3-concurrency",
      "8",
      "--s3-sse",
      "aws:kms",
      "--s3-sse-kms-key-id",
      "alias/k",
      "--s3-storage-class",
      "GLACIER_IR",
      "--s3-sdk-checksums",
    ]);
    assert.deepEqual(s3SettingsFromOptions(opts, {}), {
      endpoint: "https://minio.example:9000",
      region: "eu-central-1",
      pathStyle: true,
      caFile: "/etc/ca.pem",
      insecureSkipTlsVerify: true,
      partSize: 64 * MiB,
      concurrency: 8,
      sse: "aws:kms",
      sseKmsKeyId: "alias/k",
      storageClass: "GLACIER_IR",
      sdkChecksums: true,
    });
  });

  test("bad numbers are usage errors naming the flag", () => {
    assert.throws(
      () => parse(["--s3-part-size", "2"]),
      (e: unknown) => e instanceof UsageError && /--s3-part-size/.test(e.message),
    );
    assert.throws(() => parse(["--s3-concurrency", "0"]), /--s3-concurrency/);
    assert.throws(() => parse(["--s3-sse", "rot13"]));
  });
});

describe("s3SettingsFromOptions", () => {
  test("flags over the environment, the environment where no flag is given", () => {
    const env = {
      AWS_ENDPOINT_URL: "https://env.example",
      AWS_REGION: "us-west-2",
      ETCD_BACKUP_S3_CONCURRENCY: "6",
    };
    assert.deepEqual(s3SettingsFromOptions(parse(["--s3-region", "eu-north-1"]), env), {
      endpoint: "https://env.example",
      region: "eu-north-1",
      concurrency: 6,
    });
    assert.deepEqual(s3SettingsFromOptions(parse([]), env), {
      endpoint: "https://env.example",
      region: "us-west-2",
      concurrency: 6,
    });
  });

  test("talos-backup's environment works unchanged", () => {
    const env = {
      CUSTOM_S3_ENDPOINT: "minio.internal:9000",
      AWS_REGION: "us-west-2",
      BUCKET: "talos-backups",
    };
    assert.deepEqual(s3SettingsFromOptions(parse([]), env), {
      endpoint: "https://minio.internal:9000",
      region: "us-west-2",
      pathStyle: true,
    });
  });
});
