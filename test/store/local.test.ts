import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LOCAL_TEMP_PREFIX, LocalStore } from "../../src/store/local.ts";
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
