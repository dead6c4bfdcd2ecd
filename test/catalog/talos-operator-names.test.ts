import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CatalogEntry } from "../../src/catalog/catalog.ts";
import { backupKey, parseBackupKey } from "../../src/catalog/names.ts";
import { groupByCluster } from "../../src/cli/commands/list.ts";

/** The Talos operator's key pattern (alperencelik/talos-operator pkg/storage: Go layout 2006-01-02T15-04-05Z). */
describe("catalog names: the Talos operator's key pattern", () => {
  const time = new Date("2026-11-30T10:15:07Z");

  it("parses its plain .db, and ours with the opt-in .zst/.age; the folder's last segment is the cluster", () => {
    assert.deepEqual(
      parseBackupKey("talos-operator-etcd-backups/prod-cp/etcd-snapshot-2026-11-30T10-15-07Z.db"),
      {
        key: "talos-operator-etcd-backups/prod-cp/etcd-snapshot-2026-11-30T10-15-07Z.db",
        dir: "talos-operator-etcd-backups/prod-cp",
        cluster: "prod-cp",
        time,
        kind: "snapshot",
        compression: "none",
        encrypted: false,
        layout: "talos-operator",
      },
    );
    const enc = parseBackupKey(
      "talos-operator-etcd-backups/prod-cp/etcd-snapshot-2026-11-30T10-15-07Z.db.zst.age",
    );
    assert.deepEqual([enc?.compression, enc?.encrypted], ["zstd", true]);
  });

  it("round-trips through backupKey, and a later second keeps the pattern (a taken name)", () => {
    for (const [compression, encrypted] of [
      ["none", false],
      ["zstd", true],
    ] as const) {
      const key = backupKey({
        cluster: "prod-cp",
        time,
        compression,
        encrypted,
        dir: "talos-operator-etcd-backups/prod-cp",
        layout: "talos-operator",
      });
      const parsed = parseBackupKey(key);
      assert.ok(parsed);
      assert.equal(backupKey(parsed), key);
      assert.equal(
        backupKey({ ...parsed, time: new Date(time.getTime() + 1000) }),
        key.replace("10-15-07Z", "10-15-08Z"),
      );
    }
  });

  it("is not taken for anything else", () => {
    for (const key of [
      "etcd-snapshot-2026-11-30T10-15-07Z.db", // no folder: no cluster
      "talos-operator-etcd-backups/prod-cp/state-2026-11-30T10-15-07Z.yaml",
      "talos-operator-etcd-backups/prod-cp/etcd-snapshot-2026-11-30T10:15:07Z.db",
      "talos-operator-etcd-backups/prod-cp/etcd-snapshot-2026-13-30T10-15-07Z.db",
    ]) {
      assert.equal(parseBackupKey(key), null, key);
    }
    assert.equal(parseBackupKey("prod-2026-11-30T10:15:07Z.snap.zst.age")?.layout, undefined);
  });

  it("list groups a fleet's backups by cluster, newest first within each", () => {
    const e = (cluster: string, t: number) =>
      ({ cluster, key: `${cluster}-${t}`, time: new Date(t) }) as CatalogEntry;
    const newestFirst = [e("b", 5), e("a", 4), e("b", 3), e("c", 2), e("a", 1)];
    assert.deepEqual(
      groupByCluster(newestFirst).map((x) => x.key),
      ["a-4", "a-1", "b-5", "b-3", "c-2"],
    );
  });
});
