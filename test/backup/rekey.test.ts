import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  AgeDecryptError,
  createDecryptStream,
  decrypt,
  encrypt,
  generateIdentity,
  parseIdentities,
  parseRecipient,
} from "../../src/age/index.ts";
import { readHeaderFrom, rewrapHeader, unwrapFileKey } from "../../src/age/rekey.ts";
import { encryptionPlan } from "../../src/backup/encryption.ts";
import { parseRecipientChange, planRecipients } from "../../src/backup/rekey-recipients.ts";
import { runRekey } from "../../src/backup/rekey-run.ts";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { readSegmentPayload, writeJson, writeSegment } from "../../src/point-in-time/log-store.ts";
import { chainKey } from "../../src/point-in-time/names.ts";
import { LOG_FORMAT } from "../../src/point-in-time/records.ts";
import { SegmentBuilder } from "../../src/point-in-time/segment-format.ts";
import { LocalStore } from "../../src/store/local.ts";

function key() {
  const g = generateIdentity();
  return { id: parseIdentities(g.identity), recipient: g.recipient };
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

describe("rekey: the age header", () => {
  test("same file key, new stanzas and MAC: the payload is untouched and only the new key opens it", async () => {
    const a = key();
    const b = key();
    const data = randomBytes(200_000);
    const file = Buffer.from(await encrypt(data, [parseRecipient(a.recipient)]));
    const { header, bytes } = await readHeaderFrom(once(file));
    const fileKey = await unwrapFileKey(header, a.id);
    const newHeader = await rewrapHeader(fileKey, [parseRecipient(b.recipient)]);
    const rekeyed = Buffer.concat([newHeader, file.subarray(bytes.length)]);
    assert.deepEqual(Buffer.from(await decrypt(rekeyed, b.id)), data);
    await assert.rejects(
      decrypt(rekeyed, a.id),
      (e: unknown) => e instanceof AgeDecryptError && e.failure === "no-match",
    );
    // A header rewritten with a wrong file key fails its MAC in every reader.
    const forged = Buffer.concat([
      await rewrapHeader(randomBytes(16), [parseRecipient(b.recipient)]),
      file.subarray(bytes.length),
    ]);
    await assert.rejects(
      decrypt(forged, b.id),
      (e: unknown) => e instanceof AgeDecryptError && e.failure !== "no-match",
    );
  });

  test("armored files and garbage are refused", async () => {
    await assert.rejects(
      readHeaderFrom(once(Buffer.from("-----BEGIN AGE ENCRYPTED FILE-----\n"))),
      /armored/,
    );
    await assert.rejects(readHeaderFrom(once(Buffer.from("hello"))), /not an age file/);
    await assert.rejects(
      readHeaderFrom(once(Buffer.from("age-encryption.org/v1\n-> X25519 abc\n"))),
      /truncated/,
    );
  });
});

describe("rekey: the recipient rule", () => {
  const a = key();
  const b = key();
  const c = key();
  const pub = (k: { recipient: string }) => ({ kind: "X25519", publicKey: k.recipient });
  const change = (add: string[], remove: string[]) => parseRecipientChange(add.map(parseRecipient), remove);
  const keys = (p: ReturnType<typeof planRecipients>) => p.after.map((r) => r.publicKey);

  test("adding keeps the others, removing drops one, both in one go rotates", () => {
    assert.deepEqual(keys(planRecipients("x", [pub(a)], change([b.recipient], []), true)), [
      a.recipient,
      b.recipient,
    ]);
    assert.deepEqual(keys(planRecipients("x", [pub(a), pub(b)], change([], [a.recipient]), true)), [
      b.recipient,
    ]);
    assert.deepEqual(
      keys(planRecipients("x", [pub(a), pub(c)], change([b.recipient], [a.recipient]), true)),
      [c.recipient, b.recipient],
    );
  });

  test("a rerun finds the outcome already there: unchanged, no error", () => {
    const p = planRecipients("x", [pub(b)], change([b.recipient], [a.recipient]), true);
    assert.equal(p.unchanged, true);
  });

  test("ambiguous or impossible input is refused", () => {
    assert.throws(() => change([a.recipient], [a.recipient]), /both added .* and removed/);
    assert.throws(() => change([], []), /nothing to change/);
    assert.throws(
      () => change([], ["AGE-SECRET-KEY-1XYZ"]),
      (e: Error) => !e.message.includes("XYZ"),
    );
    assert.throws(
      () => planRecipients("x", [pub(a)], change([c.recipient], [b.recipient]), true),
      /is not a recipient of x/,
    );
    // Under --all a removal that does not apply to one backup is not an error.
    assert.deepEqual(keys(planRecipients("x", [pub(a)], change([c.recipient], [b.recipient]), false)), [
      a.recipient,
      c.recipient,
    ]);
    assert.throws(
      () => planRecipients("x", [pub(a)], change([], [a.recipient]), true),
      /without any recipient/,
    );
    assert.throws(
      () => planRecipients("x", [{ kind: "scrypt" }], change([b.recipient], []), true),
      /passphrase/,
    );
    assert.throws(
      () => planRecipients("x", [{ kind: "X25519" }], change([b.recipient], []), true),
      /does not name/,
    );
    const pq = generateIdentity({ pq: true }).recipient;
    assert.throws(() => planRecipients("x", [pub(a)], change([pq], []), true), /cannot be mixed/);
  });
});

describe("rekey: revision log segments", () => {
  const work = mkdtempSync(join(tmpdir(), "rekey-log-"));
  after(() => rmSync(work, { recursive: true, force: true }));

  test("--log rekeys every closed segment; the new key reads them, the manifests follow", async () => {
    const store = new LocalStore(work);
    const a = key();
    const b = key();
    const plan = await encryptionPlan({ recipients: [a.recipient] }, { encrypt: true });
    await writeJson(store, chainKey("prod", 1), {
      format: LOG_FORMAT,
      kind: "log-chain",
      cluster: "prod",
      base: 1,
      backup: "prod-2026-11-30T00:00:01Z.snap",
      backupTime: "2026-11-30T00:00:01.000Z",
      started: "2026-11-30T00:00:01.000Z",
      reason: "test",
    });
    for (const [first, last] of [
      [2, 5],
      [6, 9],
    ] as const) {
      const s = new SegmentBuilder();
      for (let r = first; r <= last; r++)
        s.add({
          kind: "revision",
          revision: r,
          unixMs: Date.parse("2026-11-30T00:00:00Z") + r * 1000,
          events: [],
        });
      await writeSegment({ store, cluster: "prod", dir: "", base: 1, encryption: plan }, s);
    }
    const items = await runRekey({
      store,
      identities: a.id,
      change: parseRecipientChange([parseRecipient(b.recipient)], [a.recipient]),
      log: true,
    });
    assert.deepEqual(
      items.map((i) => `${i.kind} ${i.action}`),
      ["log segment rekeyed", "log segment rekeyed"],
    );
    const [cluster] = await readLogCatalog(store);
    for (const seg of cluster!.chains[0]!.segments) {
      assert.deepEqual(seg.manifest.encryption.recipients, [{ kind: "X25519", publicKey: b.recipient }]);
      assert.equal(seg.manifest.sizes.stored, readFileSync(join(work, seg.key)).length);
      await readSegmentPayload(store, seg.manifest, seg.key, { decrypt: () => createDecryptStream(b.id) });
      await assert.rejects(
        readSegmentPayload(store, seg.manifest, seg.key, { decrypt: () => createDecryptStream(a.id) }),
      );
    }
  });
});
