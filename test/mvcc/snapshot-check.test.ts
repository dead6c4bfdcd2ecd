import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Finding, renderFindings } from "../../src/bbolt/check.ts";
import { BoltDb } from "../../src/bbolt/db.ts";
import { checkSnapshot, checkSnapshotFile } from "../../src/mvcc/snapshot-check.ts";
import { snapshotStatus } from "../../src/mvcc/status.ts";
import { etcdctlStatus, putMany, startCorpusEtcd } from "../snapshot/corpus.ts";

/** Re-seals a modified database with a correct trailer, so that only the planted corruption is found. */
function reseal(file: Buffer): Buffer {
  const data = file.subarray(0, file.length - 32);
  return Buffer.concat([data, createHash("sha256").update(data).digest()]);
}

function messages(findings: Finding[]): string {
  return findings.map((f) => `${f.severity}: ${f.message}`).join("\n");
}

describe("checkSnapshot on corrupted snapshots", () => {
  let dir: string;
  let original: Buffer;
  let pageSize: number;
  /** The root page of bucket `key`, a branch page with 5000 keys. */
  let branch: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-check-"));
    const etcd = await startCorpusEtcd();
    try {
      await putMany(etcd, 5000, "/check/", (i) => `value-${i}`);
      await etcd.ctl(["snapshot", "save", join(dir, "s.db")]);
    } finally {
      await etcd.destroy();
    }
    original = await readFile(join(dir, "s.db"));
    const db = new BoltDb(original);
    pageSize = db.pageSize;
    branch = db.bucket("key")!.root;
    assert.equal(original.readUInt16LE(branch * pageSize + 8), 0x01, "bucket key has a branch root");
    assert.ok(original.readUInt16LE(branch * pageSize + 10) >= 3, "the branch has at least three children");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const element = (i: number) => branch * pageSize + 16 + i * 16;
  const childOf = (buf: Buffer, i: number) => Number(buf.readBigUInt64LE(element(i) + 8));

  test("the untouched snapshot is sound", () => {
    assert.deepEqual(checkSnapshot(original), []);
    assert.equal(renderFindings([], "table"), "ok\n");
  });

  test("a flipped byte in a branch page key is found and names the page", () => {
    const bad = Buffer.from(original);
    const keyOff = element(1) + bad.readUInt32LE(element(1));
    bad[keyOff] = 0xff;
    const findings = checkSnapshot(bad);
    assert.match(messages(findings), /sha256 trailer mismatch/);
    const resealed = checkSnapshot(reseal(bad));
    assert.ok(resealed.length > 0);
    assert.ok(
      resealed.some((f) => f.page === branch && /out of order/.test(f.message)),
      messages(resealed),
    );
    assert.match(messages(resealed), new RegExp(`page ${branch}:`));
  });

  test("a truncated file is found", () => {
    const cut = original.subarray(0, Math.floor(original.length / 2));
    const text = messages(checkSnapshot(cut));
    assert.match(text, /truncated/);
    assert.throws(() => new BoltDb(cut), /truncated/);
  });

  test("a bad checksum in one meta page is a warning and the other meta page is used", async () => {
    const bad = Buffer.from(original);
    const db = new BoltDb(original);
    const used = db.meta.page;
    // Flip a byte of the txid field (meta offset 48) in the meta page in use.
    bad[used * pageSize + 16 + 48] = bad[used * pageSize + 16 + 48]! ^ 0x01;
    const findings = checkSnapshot(reseal(bad));
    assert.deepEqual(
      findings.map((f) => [f.severity, f.page]),
      [["warning", used]],
    );
    assert.match(findings[0]!.message, new RegExp(`meta page ${used}: checksum mismatch`));
    assert.equal(new BoltDb(bad).meta.page, 1 - used);
    // Both meta pages hold the same tree in a snapshot, so status is unchanged.
    // (As etcdctl 3.4 prints it: without the storage version an etcd 3.6 snapshot records.)
    const { version: _, ...status } = snapshotStatus(new BoltDb(bad));
    assert.deepEqual(status, await etcdctlStatus(join(dir, "s.db")));
  });

  test("both meta pages bad is an error", () => {
    const bad = Buffer.from(original);
    bad[16] = bad[16]! ^ 0xff;
    bad[pageSize + 16] = bad[pageSize + 16]! ^ 0xff;
    const findings = checkSnapshot(reseal(bad));
    assert.deepEqual(
      findings.map((f) => [f.severity, f.page]),
      [
        ["error", 0],
        ["error", 1],
      ],
    );
    assert.match(findings[0]!.message, /invalid magic/);
  });

  test("a page referenced twice is found", () => {
    const bad = Buffer.from(original);
    const first = childOf(bad, 0);
    bad.writeBigUInt64LE(BigInt(first), element(1) + 8);
    const findings = checkSnapshot(reseal(bad));
    assert.ok(
      findings.some((f) => f.page === first && /referenced twice/.test(f.message)),
      messages(findings),
    );
  });

  test("a cycle (a branch pointing at itself) is found and the check terminates", () => {
    const bad = Buffer.from(original);
    bad.writeBigUInt64LE(BigInt(branch), element(2) + 8);
    const findings = checkSnapshot(reseal(bad));
    assert.ok(
      findings.some((f) => f.page === branch && /referenced twice/.test(f.message)),
      messages(findings),
    );
  });

  test("a child beyond the high-water mark is found", () => {
    const bad = Buffer.from(original);
    const hw = new BoltDb(original).meta.pgid;
    bad.writeBigUInt64LE(BigInt(hw + 7), element(1) + 8);
    const findings = checkSnapshot(reseal(bad));
    assert.ok(
      findings.some((f) => f.page === hw + 7 && /beyond the high-water mark/.test(f.message)),
      messages(findings),
    );
  });

  test("an overflow count past the end is found", () => {
    const bad = Buffer.from(original);
    const child = childOf(bad, 0);
    bad.writeUInt32LE(1_000_000, child * pageSize + 12);
    const findings = checkSnapshot(reseal(bad));
    assert.ok(
      findings.some((f) => f.page === child && /overflow/.test(f.message)),
      messages(findings),
    );
  });

  test("a file read page by page gives the same findings as its bytes, on every corruption", async () => {
    const variants: [string, Buffer][] = [["untouched", original]];
    const add = (name: string, edit: (bad: Buffer) => void, sealed = true) => {
      const bad = Buffer.from(original);
      edit(bad);
      variants.push([name, sealed ? reseal(bad) : bad]);
    };
    const keyFlip = (bad: Buffer) => {
      bad[element(1) + bad.readUInt32LE(element(1))] = 0xff;
    };
    add("branch key flipped, trailer stale", keyFlip, false);
    add("branch key flipped", keyFlip);
    variants.push(["truncated", original.subarray(0, Math.floor(original.length / 2))]);
    variants.push(["no trailer", original.subarray(0, original.length - 32)]);
    const used = new BoltDb(original).meta.page;
    add("meta page checksum", (bad) => {
      bad[used * pageSize + 16 + 48] = bad[used * pageSize + 16 + 48]! ^ 0x01;
    });
    add("both meta pages", (bad) => {
      bad[16] = bad[16]! ^ 0xff;
      bad[pageSize + 16] = bad[pageSize + 16]! ^ 0xff;
    });
    add("page referenced twice", (bad) => bad.writeBigUInt64LE(BigInt(childOf(bad, 0)), element(1) + 8));
    add("cycle", (bad) => bad.writeBigUInt64LE(BigInt(branch), element(2) + 8));
    const hw = new BoltDb(original).meta.pgid;
    add("beyond high-water", (bad) => bad.writeBigUInt64LE(BigInt(hw + 7), element(1) + 8));
    add("overflow past the end", (bad) => bad.writeUInt32LE(1_000_000, childOf(bad, 0) * pageSize + 12));
    add(
      "trailer byte",
      (bad) => {
        bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01;
      },
      false,
    );
    for (const [name, bytes] of variants) {
      const path = join(dir, `variant.db`);
      await writeFile(path, bytes);
      const fromBuffer = checkSnapshot(bytes);
      assert.deepEqual(await checkSnapshotFile(path), fromBuffer, name);
      if (name !== "untouched") assert.ok(fromBuffer.length > 0, `${name} has findings`);
    }
  });

  test("empty, tiny and garbage files: a file read page by page gives the same findings, never throws", async () => {
    const path = join(dir, "garbage.db");
    for (const size of [0, 1, 100, 512, 544, 4096, 8192 + 32, 300_000]) {
      const bytes = Buffer.alloc(size, 7);
      await writeFile(path, bytes);
      assert.deepEqual(await checkSnapshotFile(path), checkSnapshot(bytes), `${size} bytes`);
    }
  });

  test("a bad trailer is a mismatch, a missing one is named distinctly", () => {
    const bad = Buffer.from(original);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01;
    assert.deepEqual(
      checkSnapshot(bad).map((f) => f.message),
      ["sha256 trailer mismatch: the file changed after etcd wrote it"],
    );
    const bare = original.subarray(0, original.length - 32);
    const findings = checkSnapshot(bare);
    assert.deepEqual(
      findings.map((f) => f.severity),
      ["warning"],
    );
    assert.match(findings[0]!.message, /no sha256 trailer/);
  });
});
