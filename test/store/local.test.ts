import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { describeError } from "../../src/errors.ts";
import { LOCAL_TEMP_PREFIX, LocalStore } from "../../src/store/local.ts";
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
    const top = join(dir, `${LOCAL_TEMP_PREFIX}a.snap.0123456789ab`);
    const nested = join(dir, "prod", "deeper", `${LOCAL_TEMP_PREFIX}b.snap.0123456789ab`);
    await writeFile(top, "x");
    await writeFile(nested, "y");
    await writeFile(join(dir, "prod", "not-a-leftover.snap"), "z");
    const found: string[] = [];
    for await (const l of new LocalStore(dir).leftovers()) found.push(l.path);
    assert.deepEqual(found.sort(), [nested, top].sort());
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
