import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Command } from "commander";
import {
  addObjectLockOptions,
  legalHoldFromEnv,
  type ObjectLockOptionValues,
  objectLockFromOptions,
} from "../../src/cli/object-lock-options.ts";
import { storeFromFlags } from "../../src/cli/store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../../src/cli/store-options.ts";
import { GcsStore } from "../../src/store/gcs.ts";
import { S3Store } from "../../src/store/s3.ts";

/** The flags of a command that writes (log, save-config: they open their store from the flags). */
function parse(args: string[]): StoreFlags & ObjectLockOptionValues {
  const cmd = addObjectLockOptions(addStoreOptions(new Command().exitOverride()));
  cmd.parse(args, { from: "user" });
  return cmd.opts<StoreFlags & ObjectLockOptionValues>();
}

describe("the object-lock flags of the commands that open their store from flags (log, save-config)", () => {
  test("either spelling, merged; the same setting twice must agree", () => {
    assert.deepEqual(
      objectLockFromOptions(parse(["--object-lock", "COMPLIANCE", "--object-lock-days", "4"]), {}),
      {
        mode: "compliance",
        days: 4,
      },
    );
    assert.deepEqual(
      objectLockFromOptions(
        parse(["--s3-object-lock", "governance", "--object-lock-days", "2", "--legal-hold"]),
        {},
      ),
      { mode: "governance", days: 2, legalHold: true },
    );
    assert.equal(objectLockFromOptions(parse([]), {}), undefined);
    assert.throws(
      () =>
        objectLockFromOptions(parse(["--object-lock", "compliance", "--s3-object-lock", "governance"]), {}),
      /^UsageError: --object-lock compliance contradicts --s3-object-lock governance/,
    );
  });

  test("the legal-hold variables: true/false/unset under either name, a typo refused", () => {
    assert.equal(legalHoldFromEnv({}), undefined);
    assert.equal(legalHoldFromEnv({ ETCD_BACKUP_LEGAL_HOLD: "false" }), false);
    assert.equal(legalHoldFromEnv({ ETCD_BACKUP_LEGAL_HOLD: "on" }), true);
    assert.equal(legalHoldFromEnv({ ETCD_BACKUP_S3_LEGAL_HOLD: "yes", ETCD_BACKUP_LEGAL_HOLD: "no" }), true);
    assert.throws(
      () => legalHoldFromEnv({ ETCD_BACKUP_LEGAL_HOLD: "maybe" }),
      /ETCD_BACKUP_LEGAL_HOLD: maybe is not true or false/,
    );
    assert.deepEqual(objectLockFromOptions({}, { ETCD_BACKUP_LEGAL_HOLD: "true" }), { legalHold: true });
  });

  test("the lock reaches the GCS and S3 stores' settings; a directory is refused, not written unlocked", () => {
    const gcs = storeFromFlags(
      parse(["--to", "gs://b/p", "--object-lock", "governance", "--object-lock-days", "3"]),
      {},
    );
    assert.ok(gcs instanceof GcsStore);
    assert.deepEqual(gcs.settings.objectLock, { mode: "governance", days: 3 });
    const s3 = storeFromFlags(parse(["--to", "s3://b/p", "--legal-hold"]), {});
    assert.ok(s3 instanceof S3Store);
    assert.deepEqual(s3.settings.objectLock, { legalHold: true });
    // log must give the days (no --keep-within there): the store's own check says so in the flags' words.
    assert.throws(
      () => storeFromFlags(parse(["--to", "gs://b/p", "--object-lock", "compliance"]), {}),
      /--object-lock compliance needs --object-lock-days/,
    );
    assert.throws(
      () => storeFromFlags(parse(["--to", "/var/backups", "--legal-hold"]), {}),
      /^UsageError: --legal-hold: \/var\/backups is not an object store, nothing there can be locked/,
    );
    // Without a lock flag, a directory is a directory (a legal-hold variable set for other jobs is not a flag).
    assert.ok(storeFromFlags(parse(["--to", "/var/backups"]), { ETCD_BACKUP_LEGAL_HOLD: "true" }));
  });
});
