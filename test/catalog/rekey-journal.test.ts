import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { after, beforeEach, describe, test } from "node:test";
import { recoverInterruptedRekey } from "../../src/backup/rekey.ts";
import { listBackups } from "../../src/catalog/catalog.ts";
import { type Manifest, parseManifest, serializeManifest } from "../../src/catalog/manifest.ts";
import { headerDigest, journalKey, type RekeyJournal, stagingKey } from "../../src/catalog/rekey-journal.ts";
import { LocalStore } from "../../src/store/local.ts";
import { sampleManifest } from "./fixtures.ts";

/**
 * How readers see a backup whose rekey was interrupted after its journal was written: the journal's manifest
 * when the object already starts with the new header, the old one otherwise; and how the next rekey finishes
 * or undoes it. (The end-to-end kill test is test/e2e/rekey-crash.test.ts; this one pins each state.)
 */
describe("rekey journal", () => {
  const root = mkdtempSync(join(tmpdir(), "rekey-journal-"));
  let store: LocalStore;
  const key = "prod-2026-11-30T00:00:00Z.snap.age";
  const payload = randomBytes(4000);
  const oldHead = Buffer.from("age-encryption.org/v1\n-> X25519 old\nAAAA\n--- mac\n");
  const newHead = Buffer.from("age-encryption.org/v1\n-> X25519 new, and a longer one\nBBBB\n--- mac\n");
  let oldManifest: Manifest;
  let newManifest: Manifest;

  const put = (k: string, b: Buffer | string) => store.put(k, Readable.from([Buffer.from(b)]));

  beforeEach(async () => {
    store = new LocalStore(mkdtempSync(join(root, "store-")));
    const base = sampleManifest("prod", new Date("2026-11-30T00:00:00Z"), randomBytes(64), "none", 0);
    const describe = (head: Buffer, who: string): Manifest => ({
      ...base,
      sizes: { ...base.sizes, stored: head.length + payload.length },
      object: { size: head.length + payload.length, sha256: "0".repeat(64) },
      encryption: { kind: "age", recipients: [{ kind: "X25519", publicKey: who }] },
    });
    oldManifest = describe(oldHead, "age1old");
    newManifest = describe(newHead, "age1new");
    await put(key, Buffer.concat([oldHead, payload]));
    await put(`${key}.json`, serializeManifest(oldManifest));
    const journal: RekeyJournal = {
      format: 1,
      kind: "rekey",
      run: "0123456789abcdef",
      started: new Date().toISOString(),
      from: { ...headerDigest(oldHead), objectSize: oldHead.length + payload.length },
      to: { ...headerDigest(newHead), objectSize: newHead.length + payload.length },
      manifest: JSON.parse(serializeManifest(newManifest)),
    };
    await put(journalKey(key), JSON.stringify(journal));
    await put(stagingKey(key, "0123456789abcdef"), Buffer.concat([newHead, payload]));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const listed = async () => {
    const entries = await listBackups(store);
    assert.equal(entries.length, 1, JSON.stringify(entries.map((e) => e.key)));
    return entries[0]!;
  };

  test("object still the original: the old manifest describes it; the next rekey undoes", async () => {
    const e = await listed();
    assert.equal(e.state, "complete");
    assert.equal(e.manifest?.encryption.recipients[0]?.publicKey, "age1old");
    assert.equal(await recoverInterruptedRekey(store, key, `${key}.json`), "undone");
    const keys: string[] = [];
    for await (const o of store.list("")) keys.push(o.key);
    assert.deepEqual(keys.sort(), [key, `${key}.json`]);
    assert.equal(
      parseManifest(await text(await store.get(`${key}.json`))).encryption.recipients[0]?.publicKey,
      "age1old",
    );
  });

  test("object already rewritten, manifest not yet: the journal's manifest describes it; the next rekey finishes", async () => {
    await put(key, Buffer.concat([newHead, payload]));
    const e = await listed();
    assert.equal(e.state, "complete", e.problem);
    assert.equal(e.manifest?.encryption.recipients[0]?.publicKey, "age1new");
    assert.equal(e.manifest?.sizes.stored, newHead.length + payload.length);
    assert.equal(await recoverInterruptedRekey(store, key, `${key}.json`), "finished");
    assert.deepEqual(parseManifest(await text(await store.get(`${key}.json`))), newManifest);
    assert.equal(await store.stat(journalKey(key)), null);
  });

  test("object changed by something else: the old manifest stays (and reports it), recovery refuses", async () => {
    await put(key, Buffer.concat([Buffer.from("something else entirely, longer"), payload]));
    const e = await listed();
    assert.equal(e.state, "invalid");
    assert.equal(e.manifest?.encryption.recipients[0]?.publicKey, "age1old");
    await assert.rejects(recoverInterruptedRekey(store, key, `${key}.json`), /neither header/);
    assert.ok(await store.stat(journalKey(key)), "the journal stays for a person to look at");
  });

  test("an unreadable journal decides nothing for readers; recovery says so", async () => {
    await put(journalKey(key), "{not json");
    await put(key, Buffer.concat([newHead, payload]));
    const e = await listed();
    assert.equal(e.manifest?.encryption.recipients[0]?.publicKey, "age1old");
    await assert.rejects(recoverInterruptedRekey(store, key, `${key}.json`), /cannot be read/);
  });
});
