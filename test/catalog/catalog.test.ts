import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { type CatalogEntry, listBackups, resolveBackup } from "../../src/catalog/catalog.ts";
import { describeError } from "../../src/errors.ts";
import { withOverrides } from "../../src/store/delegate.ts";
import { LocalStore } from "../../src/store/local.ts";
import { fakeSnapshot, plantBackup } from "./fixtures.ts";

const at = (iso: string) => new Date(iso);
const snap = fakeSnapshot(7);

async function tempStore(): Promise<LocalStore> {
  return new LocalStore(await mkdtemp(join(tmpdir(), "etcd-backup-catalog-")));
}

const summary = (entries: CatalogEntry[]) => entries.map((e) => `${e.state} ${e.key}`);

describe("listBackups", () => {
  let store: LocalStore;
  before(async () => {
    store = await tempStore();
    await plantBackup(store, snap, {
      cluster: "prod",
      time: at("2026-01-10T00:00:00Z"),
      compression: "zstd",
    });
    // talos-backup, under its <prefix>/ folder, in the pod's local zone: 2026-01-09T22:00Z.
    await plantBackup(store, snap, {
      cluster: "prod",
      time: at("2026-01-09T22:00:00Z"),
      key: "prod/prod-2026-01-10T00:00:00+02:00.snap",
      manifest: false,
    });
    await plantBackup(store, snap, {
      cluster: "prod",
      time: at("2026-01-11T00:00:00Z"),
      manifest: false,
      pending: true,
    });
    await plantBackup(store, snap, {
      cluster: "prod",
      time: at("2026-01-12T00:00:00Z"),
      manifest: false,
      pending: true,
      noObject: true,
    });
    await plantBackup(store, snap, { cluster: "prod", time: at("2026-01-08T00:00:00Z"), noObject: true });
    await plantBackup(store, snap, {
      cluster: "prod",
      time: at("2026-01-07T00:00:00Z"),
      manifest: JSON.stringify({ format: 99, cluster: "prod" }),
    });
    await plantBackup(store, snap, {
      cluster: "stage",
      time: at("2026-01-06T00:00:00Z"),
      manifest: "{not json",
    });
    // An upload of ours that crashed before its rename, and files that are not backups at all.
    await writeFile(
      join(store.root, ".etcd-backup-tmp-prod-2026-01-13T00:00:00Z.snap.0123456789ab"),
      "partial",
    );
    await writeFile(join(store.root, "README.md"), "hello");
    await writeFile(join(store.root, "notes.json"), "{}");
    await store.put("prod-2026-01-10T00:00:00Z.snap.zst.sha256", Readable.from([Buffer.from("x")]));
  });
  after(async () => rm(store.root, { recursive: true, force: true }));

  test("every kind of entry, newest first, compared as instants", async () => {
    const entries = await listBackups(store);
    assert.deepEqual(summary(entries), [
      "incomplete .etcd-backup-tmp-prod-2026-01-13T00:00:00Z.snap.0123456789ab",
      "incomplete prod-2026-01-12T00:00:00Z.snap",
      "incomplete prod-2026-01-11T00:00:00Z.snap",
      "complete prod-2026-01-10T00:00:00Z.snap.zst",
      "unmanaged prod/prod-2026-01-10T00:00:00+02:00.snap",
      "incomplete prod-2026-01-08T00:00:00Z.snap",
      "invalid prod-2026-01-07T00:00:00Z.snap",
      "invalid stage-2026-01-06T00:00:00Z.snap",
    ]);
    const byKey = new Map(entries.map((e) => [e.key, e]));
    const temp = entries[0]!;
    assert.equal(temp.temporary, true);
    assert.equal(temp.cluster, "prod");
    assert.equal(temp.object?.size, 7);
    assert.match(byKey.get("prod-2026-01-12T00:00:00Z.snap")!.problem!, /no object was stored/);
    assert.ok(byKey.get("prod-2026-01-12T00:00:00Z.snap")!.marker);
    assert.match(byKey.get("prod-2026-01-11T00:00:00Z.snap")!.problem!, /manifest was never written/);
    const complete = byKey.get("prod-2026-01-10T00:00:00Z.snap.zst")!;
    assert.equal(complete.manifest?.cluster, "prod");
    assert.equal(complete.manifestObject?.key, "prod-2026-01-10T00:00:00Z.snap.zst.json");
    assert.equal(complete.compression, "zstd");
    const talos = byKey.get("prod/prod-2026-01-10T00:00:00+02:00.snap")!;
    assert.equal(talos.dir, "prod");
    assert.equal(talos.manifest, undefined);
    assert.equal(talos.time.toISOString(), "2026-01-09T22:00:00.000Z");
    assert.match(byKey.get("prod-2026-01-08T00:00:00Z.snap")!.problem!, /manifest without its object/);
    assert.match(byKey.get("prod-2026-01-07T00:00:00Z.snap")!.problem!, /manifest format 99 is newer/);
    assert.match(byKey.get("stage-2026-01-06T00:00:00Z.snap")!.problem!, /not JSON/);
  });

  test("a prefix limits the listing", async () => {
    assert.deepEqual(summary(await listBackups(store, { prefix: "prod/" })), [
      "unmanaged prod/prod-2026-01-10T00:00:00+02:00.snap",
    ]);
  });
});

test("a backup prune removes between our listing and our manifest read is gone, not invalid", async () => {
  const store = await tempStore();
  try {
    const kept = await plantBackup(store, snap, { cluster: "prod", time: at("2026-01-10T00:00:00Z") });
    const pruned = await plantBackup(store, snap, { cluster: "prod", time: at("2026-01-09T00:00:00Z") });
    let lists = 0;
    const racing = withOverrides(store, {
      list: async function* (prefix) {
        const objects = [];
        for await (const o of store.list(prefix)) objects.push(o);
        if (lists++ === 0) {
          await store.delete(`${pruned}.json`);
          await store.delete(pruned);
        }
        yield* objects;
      },
    });
    assert.deepEqual(summary(await listBackups(racing)), [`complete ${kept}`]);
    assert.equal(lists, 2);
  } finally {
    await rm(store.root, { recursive: true, force: true });
  }
});

describe("resolveBackup", () => {
  let store: LocalStore;
  before(async () => {
    store = await tempStore();
    // Two clusters; the newest entries are unusable; a complete and an unmanaged backup share a second.
    await plantBackup(store, snap, { cluster: "a", time: at("2026-03-01T12:00:00Z") });
    await plantBackup(store, snap, {
      cluster: "a",
      time: at("2026-03-01T12:00:00Z"),
      compression: "zstd",
      manifest: false,
    });
    await plantBackup(store, snap, {
      cluster: "a",
      time: at("2026-03-01T11:00:00Z"),
      key: "a/a-2026-03-01T13:30:00+02:30.snap.age",
      manifest: false,
    });
    await plantBackup(store, snap, {
      cluster: "a",
      time: at("2026-03-02T00:00:00Z"),
      manifest: false,
      pending: true,
    });
    await plantBackup(store, snap, {
      cluster: "a",
      time: at("2026-03-03T00:00:00Z"),
      manifest: JSON.stringify({ format: 99 }),
    });
    await plantBackup(store, snap, { cluster: "b", time: at("2026-04-01T00:00:00Z") });
    await plantBackup(store, snap, { cluster: "b", time: at("2026-03-01T11:00:00Z"), dir: "a" });
  });
  after(async () => rm(store.root, { recursive: true, force: true }));

  const resolveKey = async (ref: string, options: Parameters<typeof resolveBackup>[2] = {}) =>
    (await resolveBackup(store, ref, options)).key;

  test("latest is refused when several clusters are in the store and none is named", async () => {
    await assert.rejects(resolveBackup(store, "latest"), (err) => {
      assert.match(
        describeError(err),
        /holds snapshot backups of 2 clusters \(a, b\); latest is ambiguous \(pass --cluster NAME\)/,
      );
      return true;
    });
  });

  test("latest of a cluster skips incomplete and invalid; at a tie the backup with manifest wins", async () => {
    assert.equal(await resolveKey("latest", { cluster: "a" }), "a-2026-03-01T12:00:00Z.snap");
    assert.equal(await resolveKey("latest", { cluster: "b" }), "b-2026-04-01T00:00:00Z.snap");
  });

  test("--before is strict and compares instants, whatever the name's zone", async () => {
    // 12:00:00Z itself is not before 12:00:00Z; the +02:30 name is 11:00Z.
    assert.equal(
      await resolveKey("latest", { cluster: "a", before: at("2026-03-01T12:00:00Z") }),
      "a/a-2026-03-01T13:30:00+02:30.snap.age",
    );
    assert.equal(
      await resolveKey("latest", { cluster: "a", before: at("2026-03-01T12:00:01Z") }),
      "a-2026-03-01T12:00:00Z.snap",
    );
    await assert.rejects(
      resolveBackup(store, "latest", { cluster: "a", before: at("2026-03-01T11:00:00Z") }),
      /no usable snapshot backup in .* for cluster a before 2026-03-01T11:00:00Z/,
    );
    assert.equal(
      await resolveKey("latest", { cluster: "b", before: at("2026-04-01T00:00:00Z") }),
      "a/b-2026-03-01T11:00:00Z.snap",
    );
  });

  test("by name, with or without its folder", async () => {
    assert.equal(await resolveKey("a-2026-03-01T12:00:00Z.snap.zst"), "a-2026-03-01T12:00:00Z.snap.zst");
    assert.equal(
      await resolveKey("a-2026-03-01T13:30:00+02:30.snap.age"),
      "a/a-2026-03-01T13:30:00+02:30.snap.age",
    );
    assert.equal(await resolveKey("a/b-2026-03-01T11:00:00Z.snap"), "a/b-2026-03-01T11:00:00Z.snap");
  });

  test("unusable, unknown and ambiguous names are one-line errors with a hint", async () => {
    await assert.rejects(resolveBackup(store, "a-2026-03-03T00:00:00Z.snap"), (err) => {
      assert.match(
        describeError(err),
        /backup a-2026-03-03T00:00:00Z\.snap is invalid: manifest format 99 is newer/,
      );
      return true;
    });
    await assert.rejects(resolveBackup(store, "a-2026-03-02T00:00:00Z.snap"), /is incomplete/);
    await assert.rejects(resolveBackup(store, "a-2030-01-01T00:00:00Z.snap"), /not found/);
    const other = await tempStore();
    try {
      await plantBackup(other, snap, { cluster: "x", time: at("2026-01-01T00:00:00Z"), dir: "one" });
      await plantBackup(other, snap, { cluster: "x", time: at("2026-01-01T00:00:00Z"), dir: "two" });
      await assert.rejects(resolveBackup(other, "x-2026-01-01T00:00:00Z.snap"), (err) => {
        assert.match(
          describeError(err),
          /is ambiguous in .*: (one|two)\/x-\S+, (one|two)\/x-\S+ \(give the name with its folder\)/,
        );
        return true;
      });
      assert.equal((await resolveBackup(other, "two/x-2026-01-01T00:00:00Z.snap")).dir, "two");
    } finally {
      await rm(other.root, { recursive: true, force: true });
    }
  });
});
