import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../src/errors.ts";
import { LocalStore } from "../../src/store/local.ts";
import { openStore, parseS3Destination } from "../../src/store/open.ts";
import { S3Store } from "../../src/store/s3.ts";

describe("openStore", () => {
  test("directories and file:// URLs open a local store", () => {
    assert.ok(openStore("/var/backups") instanceof LocalStore);
    assert.equal(openStore("file:///var/backups").location, "/var/backups");
  });

  test("s3://bucket/prefix opens an S3 store with the settings given", () => {
    const store = openStore("s3://backups/prod/etcd/", {
      endpoint: "http://127.0.0.1:9000",
      region: "eu-west-3",
    });
    assert.ok(store instanceof S3Store);
    try {
      assert.equal(store.location, "s3://backups/prod/etcd");
      assert.equal(store.bucket, "backups");
      assert.equal(store.prefix, "prod/etcd");
      assert.equal(store.settings.region, "eu-west-3");
      assert.equal(store.settings.pathStyle, true);
    } finally {
      store.destroy();
    }
  });

  test("an empty prefix is the bucket's root", () => {
    const store = openStore("s3://backups") as S3Store;
    try {
      assert.equal(store.location, "s3://backups");
      assert.equal(store.prefix, "");
    } finally {
      store.destroy();
    }
  });

  test("bad destinations and settings are usage errors", () => {
    assert.throws(() => openStore(""), UsageError);
    assert.throws(() => openStore("ftp://bucket"), UsageError);
    assert.throws(() => openStore("s3://"), UsageError);
    assert.throws(() => openStore("s3:///prefix"), UsageError);
    assert.throws(() => openStore("s3://b/a//c"), UsageError);
    assert.throws(() => openStore("s3://b", { concurrency: 0 }), UsageError);
  });

  test("parseS3Destination", () => {
    assert.deepEqual(parseS3Destination("s3://b/x/y"), { bucket: "b", prefix: "x/y" });
    assert.deepEqual(parseS3Destination("s3://b/"), { bucket: "b", prefix: "" });
    assert.deepEqual(parseS3Destination("S3://my.bucket-1/p"), { bucket: "my.bucket-1", prefix: "p" });
  });
});
