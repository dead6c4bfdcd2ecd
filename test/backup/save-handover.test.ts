/**
 * A save frees the Buffers it is done with at once (src/stages/buffer-handover.ts), and doing so never touches a
 * byte still needed: the snapshot arrives as fresh 32 KiB chunks, as etcd's Snapshot messages do, is saved with
 * zstd and age into a directory, and the real `age` and `zstd` CLIs give it back byte for byte.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { encryptionPlan } from "../../src/backup/encryption.ts";
import { saveBackup } from "../../src/backup/save.ts";
import type { SnapshotSource } from "../../src/source/source.ts";
import * as handover from "../../src/stages/buffer-handover.ts";
import { LocalStore } from "../../src/store/local.ts";

/** A snapshot of `pages` 4 KiB pages of varied content (compressible, with random stretches) and its trailer. */
function snapshotBytes(pages: number): Buffer {
  const db = Buffer.alloc(4096 * pages);
  let x = 12345;
  for (let i = 0; i < db.length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    db.writeUInt32LE((i >> 12) % 3 === 0 ? x : i >> 6, i);
  }
  return Buffer.concat([db, createHash("sha256").update(db).digest()]);
}

/** Serves `bytes` in fresh 32 KiB chunks, each with memory of its own. */
function chunkedSource(bytes: Buffer): SnapshotSource {
  return {
    description: "test source",
    async open() {
      const stream = Readable.from(
        (function* () {
          for (let off = 0; off < bytes.length; off += 32 << 10) {
            const chunk = Buffer.alloc(Math.min(32 << 10, bytes.length - off));
            bytes.copy(chunk, 0, off, off + chunk.length);
            yield chunk;
          }
        })(),
      );
      return { stream, origin: { kind: "file", endpoint: "test" } };
    },
  };
}

describe("save frees what it is done with", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-save-handover-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("zstd + age into a directory: the pieces and the encrypted output are freed, the backup is exact", async () => {
    const snapshot = snapshotBytes(2048); // 8 MiB: several zstd frames and many age chunks
    const gen = generateIdentity();
    const identityFile = join(dir, "key.txt");
    await writeFile(identityFile, identityFileText(gen));
    const store = new LocalStore(dir);
    const released = handover.releasedBytes;
    const { key, manifest } = await saveBackup({
      source: chunkedSource(snapshot),
      store,
      cluster: "c",
      compression: "zstd",
      encryption: await encryptionPlan({ recipients: [gen.recipient] }, { encrypt: true }),
    });
    const freed = handover.releasedBytes - released;
    // Every piece Coalesce made (the whole snapshot, its trailer's last bytes aside) and every encrypted
    // output buffer (the stored object, less the header) was freed at once.
    assert.ok(
      freed >= snapshot.length - 64 + manifest.sizes.stored - 1024,
      `freed ${freed} bytes of ${snapshot.length} plain + ${manifest.sizes.stored} stored`,
    );
    const stored = await readFile(join(dir, key));
    const plain = execFileSync("/usr/bin/zstd", ["-dc"], {
      input: execFileSync("/usr/bin/age", ["-d", "-i", identityFile], { input: stored, maxBuffer: 64 << 20 }),
      maxBuffer: 64 << 20,
    });
    assert.ok(plain.equals(snapshot), "age -d | zstd -d gives the snapshot back");
    assert.equal(manifest.sha256, createHash("sha256").update(snapshot).digest("hex"));
  });
});
