import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../src/errors.ts";
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_PART_SIZE,
  insecureTlsWarning,
  mergeS3Settings,
  needsPathStyle,
  resolveS3Settings,
  s3SettingsFromEnv,
  talosBackupDestination,
} from "../../src/store/s3-settings.ts";

const MiB = 1024 * 1024;

describe("s3SettingsFromEnv", () => {
  test("endpoint: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then CUSTOM_S3_ENDPOINT", () => {
    const all = {
      AWS_ENDPOINT_URL_S3: "https://s3-specific.example",
      AWS_ENDPOINT_URL: "https://generic.example",
      CUSTOM_S3_ENDPOINT: "https://talos.example",
    };
    assert.equal(s3SettingsFromEnv(all).endpoint, "https://s3-specific.example");
    assert.equal(s3SettingsFromEnv({ ...all, AWS_ENDPOINT_URL_S3: "" }).endpoint, "https://generic.example");
    assert.equal(
      s3SettingsFromEnv({ CUSTOM_S3_ENDPOINT: "https://talos.example" }).endpoint,
      "https://talos.example",
    );
    assert.equal(s3SettingsFromEnv({}).endpoint, undefined);
  });

  test("region: AWS_REGION, then AWS_DEFAULT_REGION; us-east-1 when neither", () => {
    assert.equal(
      s3SettingsFromEnv({ AWS_REGION: "eu-west-3", AWS_DEFAULT_REGION: "ap-south-1" }).region,
      "eu-west-3",
    );
    assert.equal(s3SettingsFromEnv({ AWS_DEFAULT_REGION: "ap-south-1" }).region, "ap-south-1");
    assert.equal(resolveS3Settings(s3SettingsFromEnv({})).region, "us-east-1");
  });

  test("talos-backup: a bare CUSTOM_S3_ENDPOINT host means https, and gets path style like its minio client", () => {
    const s = s3SettingsFromEnv({ CUSTOM_S3_ENDPOINT: "my-s3-compatible-api.example.com:1234" });
    assert.equal(s.endpoint, "https://my-s3-compatible-api.example.com:1234");
    assert.equal(s.pathStyle, true);
    assert.equal(
      s3SettingsFromEnv({ CUSTOM_S3_ENDPOINT: "http://minio.local:9000" }).endpoint,
      "http://minio.local:9000",
    );
    // On AWS itself minio addresses virtual-host style; we leave the choice to the default rule.
    assert.equal(
      s3SettingsFromEnv({ CUSTOM_S3_ENDPOINT: "s3.eu-west-1.amazonaws.com" }).pathStyle,
      undefined,
    );
  });

  test("talos-backup: USE_PATH_STYLE=true forces path style, also for a standard AWS endpoint variable", () => {
    assert.equal(
      s3SettingsFromEnv({ AWS_ENDPOINT_URL: "https://s3.example", USE_PATH_STYLE: "true" }).pathStyle,
      true,
    );
    assert.equal(s3SettingsFromEnv({ AWS_ENDPOINT_URL: "https://s3.example" }).pathStyle, undefined);
    // Our own variable wins over talos-backup's.
    assert.equal(
      s3SettingsFromEnv({ ETCD_BACKUP_S3_PATH_STYLE: "false", USE_PATH_STYLE: "true" }).pathStyle,
      false,
    );
  });

  test("CA bundle: ETCD_BACKUP_S3_CA, then AWS_CA_BUNDLE", () => {
    assert.equal(s3SettingsFromEnv({ AWS_CA_BUNDLE: "/etc/aws-ca.pem" }).caFile, "/etc/aws-ca.pem");
    assert.equal(
      s3SettingsFromEnv({ AWS_CA_BUNDLE: "/etc/aws-ca.pem", ETCD_BACKUP_S3_CA: "/etc/ours.pem" }).caFile,
      "/etc/ours.pem",
    );
  });

  test("the other ETCD_BACKUP_S3_* variables parse, and bad values are usage errors naming the variable", () => {
    const s = s3SettingsFromEnv({
      ETCD_BACKUP_S3_PART_SIZE: "32",
      ETCD_BACKUP_S3_CONCURRENCY: "8",
      ETCD_BACKUP_S3_SSE: "aws:kms",
      ETCD_BACKUP_S3_SSE_KMS_KEY_ID: "alias/backups",
      ETCD_BACKUP_S3_STORAGE_CLASS: "STANDARD_IA",
      ETCD_BACKUP_S3_INSECURE_SKIP_TLS_VERIFY: "1",
      ETCD_BACKUP_S3_SDK_CHECKSUMS: "yes",
    });
    assert.deepEqual(s, {
      partSize: 32 * MiB,
      concurrency: 8,
      sse: "aws:kms",
      sseKmsKeyId: "alias/backups",
      storageClass: "STANDARD_IA",
      insecureSkipTlsVerify: true,
      sdkChecksums: true,
    });
    assert.throws(
      () => s3SettingsFromEnv({ ETCD_BACKUP_S3_PART_SIZE: "4" }),
      (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, /ETCD_BACKUP_S3_PART_SIZE: 4 MiB is out of range/);
        return true;
      },
    );
    assert.throws(
      () => s3SettingsFromEnv({ ETCD_BACKUP_S3_SSE: "des" }),
      /unknown server-side encryption des/,
    );
    assert.throws(
      () => s3SettingsFromEnv({ USE_PATH_STYLE: "maybe" }),
      /USE_PATH_STYLE: maybe is not true or false/,
    );
  });
});

describe("mergeS3Settings", () => {
  test("a field set over wins, an unset one keeps the base", () => {
    const merged = mergeS3Settings(
      { region: "eu-west-1", partSize: 8 * MiB },
      { region: "us-west-2", concurrency: 2 },
    );
    assert.deepEqual(merged, { region: "us-west-2", partSize: 8 * MiB, concurrency: 2 });
  });

  test("a new endpoint drops the path style derived for the old one", () => {
    const env = s3SettingsFromEnv({ CUSTOM_S3_ENDPOINT: "minio.example:9000" });
    assert.equal(env.pathStyle, true);
    assert.equal(mergeS3Settings(env, { endpoint: "https://s3.example" }).pathStyle, undefined);
    assert.equal(mergeS3Settings(env, { endpoint: "https://s3.example", pathStyle: true }).pathStyle, true);
  });
});

describe("talosBackupDestination", () => {
  test("s3://$BUCKET/$S3_PREFIX, the prefix defaulting to CLUSTER_NAME, outer slashes removed", () => {
    assert.equal(
      talosBackupDestination({ BUCKET: "b", S3_PREFIX: "important/backups" }),
      "s3://b/important/backups",
    );
    assert.equal(talosBackupDestination({ BUCKET: "b", S3_PREFIX: "/x/", CLUSTER_NAME: "prod" }), "s3://b/x");
    assert.equal(talosBackupDestination({ BUCKET: "b", CLUSTER_NAME: "prod" }), "s3://b/prod");
    assert.equal(talosBackupDestination({ BUCKET: "b", S3_PREFIX: "/" }), "s3://b");
    assert.equal(talosBackupDestination({ S3_PREFIX: "x" }), undefined);
  });
});

describe("resolveS3Settings", () => {
  test("defaults", () => {
    const r = resolveS3Settings({});
    assert.equal(r.endpoint, undefined);
    assert.equal(r.region, "us-east-1");
    assert.equal(r.pathStyle, false);
    assert.equal(r.partSize, DEFAULT_PART_SIZE);
    assert.equal(r.concurrency, DEFAULT_CONCURRENCY);
    assert.equal(r.sdkChecksums, false);
    assert.equal(r.insecureSkipTlsVerify, false);
  });

  test("path style is automatic for IP and localhost endpoints only, and a flag overrides it", () => {
    for (const [endpoint, expected] of [
      ["http://127.0.0.1:9000", true],
      ["https://10.1.2.3", true],
      ["http://[::1]:9000", true],
      ["http://localhost:9000", true],
      ["https://minio.example.com", false],
      ["https://s3.eu-west-1.amazonaws.com", false],
    ] as const) {
      assert.equal(needsPathStyle(endpoint), expected, endpoint);
      assert.equal(resolveS3Settings({ endpoint }).pathStyle, expected, endpoint);
    }
    assert.equal(
      resolveS3Settings({ endpoint: "https://minio.example.com", pathStyle: true }).pathStyle,
      true,
    );
    assert.equal(resolveS3Settings({ endpoint: "http://127.0.0.1:9000", pathStyle: false }).pathStyle, false);
  });

  test("rejects bad values with usage errors", () => {
    assert.throws(() => resolveS3Settings({ endpoint: "not a url" }), UsageError);
    assert.throws(
      () => resolveS3Settings({ endpoint: "ftp://host" }),
      (e: unknown) => e instanceof UsageError && /must start with https:\/\/ or http:\/\//.test(e.hint ?? ""),
    );
    assert.throws(
      () => resolveS3Settings({ partSize: 5 * MiB - 1 }),
      (e: unknown) => e instanceof UsageError && e.hint === "S3 parts are 5 MiB to 5 GiB",
    );
    assert.throws(() => resolveS3Settings({ concurrency: 0 }), UsageError);
    assert.throws(
      () => resolveS3Settings({ sseKmsKeyId: "k" }),
      /an SSE KMS key id needs aws:kms encryption/,
    );
    assert.equal(resolveS3Settings({ partSize: 5 * MiB }).partSize, 5 * MiB);
  });

  test("the insecure warning names the endpoint and says what to use instead", () => {
    assert.match(
      insecureTlsWarning("https://10.0.0.5:9000"),
      /DISABLED for https:\/\/10\.0\.0\.5:9000.*--s3-ca/,
    );
  });
});
