import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { saveBackup } from "../../src/backup/save.ts";
import { FileSource } from "../../src/source/file.ts";
import { LocalStore } from "../../src/store/local.ts";
import { fakeSnapshot } from "../catalog/fixtures.ts";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("save: the manifest's object sha256", () => {
  let dir: string;
  let file: string;
  let snapshot: Buffer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-save-digest-"));
    file = join(dir, "snapshot.db");
    // 3 MiB of pages (several 256 KiB pieces through the stages) and etcd's sha256 trailer.
    snapshot = fakeSnapshot(9, 6144);
    await writeFile(file, snapshot);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const compression of ["none", "zstd"] as const) {
    test(`is the stored object's hash (compression ${compression}, not encrypted)`, async () => {
      await mkdir(join(dir, compression));
      const store = new LocalStore(join(dir, compression));
      const { key, manifest } = await saveBackup({
        source: new FileSource(file),
        store,
        cluster: "c",
        compression,
        encryption: null,
      });
      const stored = await readFile(join(store.root, key));
      assert.equal(manifest.object?.size, stored.length);
      assert.equal(manifest.object?.sha256, sha256(stored));
      assert.equal(manifest.sha256, sha256(snapshot));
      // Uncompressed and unencrypted, the object is the snapshot: its hash comes from the trailer check.
      if (compression === "none") assert.ok(stored.equals(snapshot));
      else assert.notEqual(manifest.object?.sha256, manifest.sha256);
    });
  }
});
