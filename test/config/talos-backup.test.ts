import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chooseSource } from "../../src/config/settings.ts";
import { readTalosBackupEnv, talosBackupStoreDestination } from "../../src/config/talos-backup.ts";

test("talos-backup's switches are on only for the exact string true", () => {
  for (const [value, on] of [
    ["true", true],
    ["TRUE", false],
    ["1", false],
    ["yes", false],
    ["", false],
  ] as const) {
    const env = readTalosBackupEnv({ ENABLE_COMPRESSION: value, DISABLE_ENCRYPTION: value });
    assert.equal(env.enableCompression, on, value);
    assert.equal(env.disableEncryption, on, value);
  }
  assert.equal(readTalosBackupEnv({}).enableCompression, undefined);
  assert.equal(readTalosBackupEnv({}).present, false);
  assert.equal(readTalosBackupEnv({ BUCKET: "b" }).present, true);
});

test("the prefix defaults to the resolved cluster name", () => {
  assert.equal(talosBackupStoreDestination({ BUCKET: "b" }, "default"), "s3://b/default");
  assert.equal(talosBackupStoreDestination({ BUCKET: "b", S3_PREFIX: "/x/y" }, "c"), "s3://b/x/y");
  assert.equal(talosBackupStoreDestination({}, "c"), undefined);
});

test("source choice: explicit, Talos flags, etcd flags, then talosconfig hints", () => {
  const dir = mkdtempSync(join(tmpdir(), "choose-source-"));
  try {
    const none = join(dir, "none");
    const sa = join(dir, "sa");
    mkdirSync(sa);
    writeFileSync(join(sa, "config"), "");
    const base = {
      explicit: undefined,
      talosFlags: false,
      etcdGiven: false,
      env: {},
      talosconfigFound: false,
      serviceAccountDir: none,
    };
    assert.equal(chooseSource(base), "etcd");
    assert.equal(chooseSource({ ...base, explicit: "talos" }), "talos");
    assert.equal(chooseSource({ ...base, explicit: "etcd", talosFlags: true }), "etcd");
    assert.throws(() => chooseSource({ ...base, explicit: "file" }), /unknown source "file"/);
    assert.equal(chooseSource({ ...base, talosFlags: true, etcdGiven: true }), "talos");
    assert.equal(chooseSource({ ...base, etcdGiven: true, env: { TALOSCONFIG: "/x" } }), "etcd");
    assert.equal(chooseSource({ ...base, env: { TALOSCONFIG: "/x" } }), "talos");
    assert.equal(chooseSource({ ...base, serviceAccountDir: sa }), "talos");
    assert.equal(chooseSource({ ...base, env: { BUCKET: "b" } }), "etcd");
    assert.equal(chooseSource({ ...base, env: { BUCKET: "b" }, talosconfigFound: true }), "talos");
    assert.equal(
      chooseSource({ ...base, talosconfigFound: true }),
      "etcd",
      "a ~/.talos/config alone is no reason",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
