import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BoltDb } from "../../src/bbolt/db.ts";
import { diffSnapshots, renderDiff } from "../../src/snapshot/diff.ts";
import { startCorpusEtcd } from "./corpus.ts";

describe("diffSnapshots between two snapshots of a real etcd", () => {
  let dir: string;
  let a: BoltDb;
  let b: BoltDb;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-diff-"));
    const etcd = await startCorpusEtcd();
    try {
      await etcd.ctl(["put", "/registry/pods/default/web", "{}"]);
      await etcd.ctl(["put", "/registry/pods/default/db", "{}"]);
      await etcd.ctl(["put", "/registry/configmaps/kube-system/cfg", "v1"]);
      await etcd.ctl(["put", "/app/same", "x"]);
      await etcd.ctl(["snapshot", "save", join(dir, "a.db")]);
      await etcd.ctl(["put", "/registry/pods/default/api", "{}"]);
      await etcd.ctl(["del", "/registry/pods/default/db"]);
      await etcd.ctl(["put", "/registry/configmaps/kube-system/cfg", "v2"]);
      await etcd.ctl(["put", "/app/new", "y"]);
      await etcd.ctl(["snapshot", "save", join(dir, "b.db")]);
    } finally {
      await etcd.destroy();
    }
    a = await BoltDb.open(join(dir, "a.db"));
    b = await BoltDb.open(join(dir, "b.db"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("added, removed and modified keys, per resource", () => {
    const d = diffSnapshots(a, b);
    assert.equal(d.fromRevision, 5);
    assert.equal(d.toRevision, 9);
    assert.deepEqual(
      d.changes.map((c) => [c.change, c.key]),
      [
        ["added", "/app/new"],
        ["modified", "/registry/configmaps/kube-system/cfg"],
        ["added", "/registry/pods/default/api"],
        ["removed", "/registry/pods/default/db"],
      ],
    );
    const cfg = d.changes.find((c) => c.key.includes("cfg"))!;
    assert.deepEqual([cfg.fromModRevision, cfg.toModRevision, cfg.fromBytes, cfg.toBytes], [4, 8, 2, 2]);
    assert.deepEqual(d.resources, [
      { resource: "(outside /registry)", added: 1, removed: 0, modified: 0 },
      { resource: "configmaps", added: 0, removed: 0, modified: 1 },
      { resource: "pods", added: 1, removed: 1, modified: 0 },
    ]);
    const table = renderDiff(d, "table");
    assert.match(table, /\| pods +\| +1 \| +1 \| +0 \|/);
    assert.match(table, /^~ \/registry\/configmaps\/kube-system\/cfg \(mod revision 4 -> 8\)$/m);
    assert.match(table, /^- \/registry\/pods\/default\/db$/m);
    assert.deepEqual(JSON.parse(renderDiff(d, "json")), d);
  });

  test("a snapshot against itself has no changes; the reverse diff swaps added and removed", () => {
    assert.deepEqual(diffSnapshots(a, a).changes, []);
    assert.match(renderDiff(diffSnapshots(b, b), "table"), /no changes/);
    const reverse = diffSnapshots(b, a, { prefix: "/registry/pods/" });
    assert.deepEqual(
      reverse.changes.map((c) => [c.change, c.key]),
      [
        ["removed", "/registry/pods/default/api"],
        ["added", "/registry/pods/default/db"],
      ],
    );
  });
});
