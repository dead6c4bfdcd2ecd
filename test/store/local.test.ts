import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { describeError } from "../../src/errors.ts";
import { LocalStore } from "../../src/store/local.ts";
import { NotFoundError } from "../../src/store/store.ts";
import { runStoreConformance } from "./conformance.ts";

runStoreConformance("local directory", async () => {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-local-store-"));
  return {
    store: new LocalStore(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
    exclusiveCreate: true,
  };
});

test("leftovers are found in every folder of the store (talos-backup puts backups under <prefix>/)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-local-leftovers-"));
  try {
    await mkdir(join(dir, "prod", "deeper"), { recursive: true });
    // The local store's temporary name: `.etcd-backup-tmp-<target>.<12 hex digits>`.
    await writeFile(join(dir, ".etcd-backup-tmp-a.snap.0123456789ab"), "x");
    await writeFile(join(dir, "prod", "deeper", ".etcd-backup-tmp-b.snap.0123456789ab"), "yy");
    await writeFile(join(dir, "prod", "not-a-leftover.snap"), "z");
    const store = new LocalStore(dir);
    const found: string[] = [];
    for await (const l of store.leftovers()) found.push(`${l.key} ${l.kind} ${l.size} ${l.id}`);
    assert.deepEqual(found.sort(), [
      "a.snap temporary file 1 .etcd-backup-tmp-a.snap.0123456789ab",
      "prod/deeper/b.snap temporary file 2 prod/deeper/.etcd-backup-tmp-b.snap.0123456789ab",
    ]);
    const under: string[] = [];
    for await (const l of store.leftovers("prod/")) under.push(l.key);
    assert.deepEqual(under, ["prod/deeper/b.snap"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a store root that is a file: one clear error, never a raw ENOTDIR", async () => {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-local-notdir-"));
  try {
    const file = join(dir, "not-a-dir");
    await writeFile(file, "x");
    const store = new LocalStore(file);
    const notDir = (err: unknown) => {
      assert.match(describeError(err), /is not a directory \(point --to at a directory\)/);
      return true;
    };
    await assert.rejects(async () => {
      for await (const _ of store.list()) break;
    }, notDir);
    await assert.rejects(store.put("a.snap", Readable.from([Buffer.from("x")])), notDir);
    assert.equal(await store.stat("a.snap"), null);
    await assert.rejects(store.get("a.snap"), NotFoundError);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
