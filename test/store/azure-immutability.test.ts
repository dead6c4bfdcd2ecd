import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { pruneBackups } from "../../src/catalog/prune.ts";
import { describeError, UsageError } from "../../src/errors.ts";
import { AzureBlobStore } from "../../src/store/azure-blob.ts";
import {
  lockFields,
  noImmutabilityError,
  policyUntil,
  retentionFields,
  retentionFromProperties,
} from "../../src/store/azure-immutability.ts";
import { type AzureSettings, resolveAzureSettings } from "../../src/store/azure-settings.ts";
import { withOverrides } from "../../src/store/delegate.ts";
import { replaceObject } from "../../src/store/replace-object.ts";
import type { ObjectLockSettings } from "../../src/store/s3-settings.ts";
import { NO_RETENTION, NotFoundError, type Retention } from "../../src/store/store.ts";
import { fakeSnapshot, plantBackup } from "../catalog/fixtures.ts";
import { type AzureBlobStandin, startAzureBlobStandin } from "../fixtures/azure-blob-standin.ts";
import { startAzurite, type TestAzurite } from "../fixtures/azurite-server.ts";
import { runStoreConformance } from "./conformance.ts";

/**
 * Version-level immutability of the Azure Blob store. Azurite (3.35) has none of it (see the last suite, which
 * checks what it does), so the write, read, delete and prune paths run against a STAND-IN that answers as the Blob
 * REST API documents (test/fixtures/azure-blob-standin.ts) and records the SDK's requests.
 */

const MiB = 1024 * 1024;
const DAY = 86_400_000;
const now = new Date("2026-11-30T10:00:00.250Z");
/** Only the stand-in's well-formed placeholder, never checked by it. Not a secret. */
const KEY = Buffer.from("stand-in key, not checked").toString("base64");

/** The one line the CLI would print, checked to be one line. */
function userLine(err: unknown): string {
  assert.ok(err instanceof Error, `expected an error, got ${String(err)}`);
  const line = describeError(err);
  assert.ok(!line.includes("\n"), `more than one line: ${line}`);
  assert.ok(!line.includes(KEY), `the key is shown: ${line}`);
  return line;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

// The store contract holds on a container with version-level immutability too (versioned: deletes, overwrites and
// discarded uploads leave previous versions, which must never show), with a lock configured.
runStoreConformance("Azure Blob, version-level immutability (Blob service STAND-IN)", async () => {
  const standin = await startAzureBlobStandin();
  standin.createContainer("conformance", { versionLevelImmutability: true });
  const store = new AzureBlobStore({
    container: "conformance",
    prefix: "backups/cluster-a",
    settings: {
      endpoint: standin.endpoint,
      blockSize: MiB,
      retryBaseDelayMs: 5,
      objectLock: { mode: "governance", days: 1 },
    },
    secrets: { accountKey: KEY },
  });
  return {
    store,
    async cleanup() {
      const left: string[] = [];
      for await (const l of store.leftovers()) left.push(l.key);
      await standin.close();
      assert.deepEqual(left, []);
    },
    exclusiveCreate: true,
  };
});

describe("immutability fields and their reading", () => {
  test("governance is an Unlocked policy, compliance a Locked one, `days` after the write in whole seconds rounded up", () => {
    assert.deepEqual(lockFields({ mode: "governance", days: 1 }, now), {
      immutabilityPolicy: { expiriesOn: new Date("2026-12-01T10:00:01.000Z"), policyMode: "Unlocked" },
    });
    assert.deepEqual(lockFields({ mode: "compliance", days: 400 }, new Date("2026-01-01T00:00:00Z")), {
      immutabilityPolicy: { expiriesOn: new Date("2027-02-05T00:00:00Z"), policyMode: "Locked" },
    });
    for (const ms of [0, 1, 999, 1000, 1001]) {
      const at = new Date(Date.UTC(2026, 10, 30) + ms);
      const until = policyUntil(2, at).getTime();
      assert.ok(until >= at.getTime() + 2 * DAY && until < at.getTime() + 2 * DAY + 1000, String(ms));
      assert.equal(until % 1000, 0);
    }
  });

  test("a legal hold alone or with a policy; nothing asked, nothing sent", () => {
    assert.deepEqual(lockFields({ legalHold: true }, now), { legalHold: true });
    assert.deepEqual(Object.keys(lockFields({ mode: "governance", days: 3, legalHold: true }, now)).sort(), [
      "immutabilityPolicy",
      "legalHold",
    ]);
    assert.deepEqual(lockFields({}, now), {});
  });

  test("a kept retention (rekey) is copied, rounded up to the second; a past date is dropped, a legal hold never", () => {
    const until = new Date("2026-12-01T10:00:01.400Z");
    assert.deepEqual(retentionFields({ mode: "compliance", retainUntil: until, legalHold: true }, now), {
      immutabilityPolicy: { expiriesOn: new Date("2026-12-01T10:00:02.000Z"), policyMode: "Locked" },
      legalHold: true,
    });
    const past = new Date(now.getTime() - 1000);
    assert.deepEqual(retentionFields({ mode: "governance", retainUntil: past, legalHold: false }, now), {});
    assert.deepEqual(retentionFields({ mode: "governance", retainUntil: past, legalHold: true }, now), {
      legalHold: true,
    });
  });

  test("read back: locked is compliance, unlocked (any case) governance, a hold alone, nothing", () => {
    const until = new Date("2027-01-03T10:00:00Z");
    assert.deepEqual(
      retentionFromProperties({ immutabilityPolicyExpiresOn: until, immutabilityPolicyMode: "Locked" }),
      { mode: "compliance", retainUntil: until, legalHold: false },
    );
    assert.deepEqual(
      retentionFromProperties({
        immutabilityPolicyExpiresOn: until,
        immutabilityPolicyMode: "unlocked",
        legalHold: true,
      }),
      { mode: "governance", retainUntil: until, legalHold: true },
    );
    assert.deepEqual(retentionFromProperties({ legalHold: true }), { legalHold: true });
    assert.deepEqual(retentionFromProperties({ legalHold: false }), NO_RETENTION);
    assert.deepEqual(retentionFromProperties({}), NO_RETENTION);
  });

  test("the container refusal is one line naming the container, the az command and the flag to drop", () => {
    const err = noImmutabilityError("acct", "backups", { mode: "compliance", days: 3 });
    assert.ok(err instanceof UsageError);
    const line = describeError(err);
    assert.match(line, /^container backups in storage account acct has no version-level immutability \(/);
    assert.match(line, /az storage container-rm create --storage-account acct --name backups --enable-vlw/);
    assert.match(line, /ask for no object lock\)$/);
    assert.match(
      describeError(noImmutabilityError("acct", "b", { legalHold: true })),
      /ask for no legal hold\)$/,
    );
  });

  test("settings: a mode needs its days and days a mode; a legal hold stands alone; out of range is refused", () => {
    const resolve = (objectLock: ObjectLockSettings) =>
      resolveAzureSettings({ account: "acct", objectLock }, { accountKey: KEY }).objectLock;
    assert.deepEqual(resolve({ mode: "compliance", days: 30 }), { mode: "compliance", days: 30 });
    assert.deepEqual(resolve({ legalHold: true }), { legalHold: true });
    assert.equal(resolve({}), undefined);
    assert.equal(resolveAzureSettings({ account: "acct" }, { accountKey: KEY }).objectLock, undefined);
    assert.throws(() => resolve({ mode: "governance" }), /--object-lock governance needs --object-lock-days/);
    assert.throws(() => resolve({ days: 3 }), /--object-lock-days needs --object-lock/);
    assert.throws(() => resolve({ mode: "governance", days: 0 }), /out of range/);
    assert.throws(
      () => resolve({ mode: "strict" as "governance", days: 1 }),
      /unknown object lock mode strict/,
    );
  });
});

describe("AzureBlobStore immutability against the Blob service STAND-IN", () => {
  let standin: AzureBlobStandin;
  before(async () => {
    standin = await startAzureBlobStandin();
  });
  after(async () => {
    await standin.close();
  });
  let n = 0;
  let container: string;
  beforeEach(() => {
    container = `c${++n}`;
    standin.createContainer(container, { versionLevelImmutability: true });
    standin.requests.length = 0;
    standin.denyContainerProperties = false;
    standin.denyVersionDeletes = false;
    standin.heldCurrentDelete = "refuse";
  });
  afterEach(() => {
    standin.denyContainerProperties = false;
    standin.denyVersionDeletes = false;
    standin.heldCurrentDelete = "refuse";
  });

  const makeStore = (
    objectLock?: ObjectLockSettings,
    name = container,
    settings: AzureSettings = {},
    warn?: (line: string) => void,
  ) =>
    new AzureBlobStore({
      ...(warn ? { warn } : {}),
      container: name,
      prefix: "backups",
      settings: {
        endpoint: standin.endpoint,
        blockSize: MiB,
        retryBaseDelayMs: 5,
        maxAttempts: 2,
        ...(objectLock ? { objectLock } : {}),
        ...settings,
      },
      secrets: { accountKey: KEY },
    });
  const writes = () =>
    standin.requests.filter((r) => r.method === "PUT" && r.blob && r.query.comp !== "block");
  const deletes = () => standin.requests.filter((r) => r.method === "DELETE");

  test("a multi-block backup: the policy rides on Put Block List only, Unlocked for governance; the blocks carry none", async () => {
    const store = makeStore({ mode: "governance", days: 3 });
    const body = Buffer.alloc(Math.floor(2.5 * MiB), 7);
    const before = Date.now();
    await store.put("a.db", Readable.from([body]), { immutable: true });
    const after = Date.now();
    const blocks = standin.requests.filter((r) => r.query.comp === "block");
    assert.equal(blocks.length, 3);
    for (const b of blocks) assert.equal(b.headers["x-ms-immutability-policy-until-date"], undefined);
    const [commit] = writes();
    assert.equal(commit?.query.comp, "blocklist");
    assert.equal(commit.headers["x-ms-immutability-policy-mode"], "Unlocked");
    const until = Date.parse(commit.headers["x-ms-immutability-policy-until-date"] ?? "");
    assert.ok(until >= before + 3 * DAY - 1000 && until <= after + 3 * DAY + 1000, String(until));
    assert.equal(commit.headers["x-ms-legal-hold"], undefined);
    // Read back through Get Blob Properties.
    const r = await store.retention("a.db");
    assert.equal(r.mode, "governance");
    assert.equal(r.retainUntil?.getTime(), until);
    assert.equal(r.legalHold, false);
    assert.ok((await readAll(await store.get("a.db"))).equals(body));
  });

  test("a small backup: Put Blob carries a Locked policy for compliance; markers and heads (not immutable) carry none", async () => {
    const store = makeStore({ mode: "compliance", days: 30 });
    await store.put("b.db", Readable.from([Buffer.from("small")]), { immutable: true });
    await store.put("b.db.pending", Readable.from([Buffer.from("{}")]));
    const [blob, marker] = writes();
    assert.ok(blob && marker);
    assert.equal(blob.query.comp, undefined);
    assert.equal(blob.headers["x-ms-immutability-policy-mode"], "Locked");
    assert.equal(marker.headers["x-ms-immutability-policy-mode"], undefined);
    assert.equal(marker.headers["x-ms-legal-hold"], undefined);
    assert.equal((await store.retention("b.db")).mode, "compliance");
    assert.deepEqual(await store.retention("b.db.pending"), NO_RETENTION);
    // The marker goes; the held backup is refused in one line naming the hold, and stays whole.
    await store.delete("b.db.pending");
    const err = await store.delete("b.db").catch((e: unknown) => e);
    const day = new Date(Date.now() + 30 * DAY).toISOString().slice(0, 10);
    assert.match(
      userLine(err),
      new RegExp(`^delete azblob://${container}/backups/b.db: object lock compliance until ${day}`),
    );
    assert.equal((await readAll(await store.get("b.db"))).toString(), "small");
    // No Delete Blob was ever sent for the held blob: the store looked first.
    assert.deepEqual(
      deletes().map((r) => r.blob),
      ["backups/b.db.pending", "backups/b.db.pending"],
    );
  });

  test("a legal hold: x-ms-legal-hold on the write, read back, and the delete refused with `legal hold`", async () => {
    const store = makeStore({ legalHold: true });
    await store.put("c.db", Readable.from([Buffer.from("held")]), { immutable: true });
    const [write] = writes();
    assert.equal(write?.headers["x-ms-legal-hold"], "true");
    assert.equal(write.headers["x-ms-immutability-policy-mode"], undefined);
    assert.deepEqual(await store.retention("c.db"), { legalHold: true });
    const err = await store.delete("c.db").catch((e: unknown) => e);
    assert.equal(userLine(err), `delete azblob://${container}/backups/c.db: legal hold`);
    assert.equal(deletes().length, 0);
    assert.ok(await store.stat("c.db"));
  });

  test("the upload is invisible until Put Block List commits it, and is locked from its first version on", async () => {
    const store = makeStore({ mode: "compliance", days: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let sent = 0;
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < 4; i++) {
          if (i === 3) await gate;
          sent++;
          yield Buffer.alloc(MiB, i);
        }
      })(),
    );
    const put = store.put("d.db", body, { immutable: true });
    while (standin.requests.filter((r) => r.query.comp === "block").length < 2) await sleep(10);
    assert.equal(await store.stat("d.db"), null);
    for await (const o of store.list()) assert.fail(`listed ${o.key} before its commit`);
    await assert.rejects(store.retention("d.db"), NotFoundError);
    assert.equal(standin.versions(container, "backups/d.db").length, 0);
    release();
    await put;
    assert.equal(sent, 4);
    const versions = standin.versions(container, "backups/d.db");
    assert.equal(versions.length, 1);
    assert.equal(versions[0]?.policy?.mode, "locked");
  });

  test("an aborted locked upload leaves nothing: no blob, no version, no staged block, no leftover", async () => {
    const store = makeStore({ mode: "compliance", days: 1 });
    const abort = new AbortController();
    const body = Readable.from(
      (async function* () {
        for (let i = 0; i < 6; i++) {
          if (i === 3) {
            // Once blocks are staged, so that the abort has some to discard.
            const staged = () =>
              standin.requests.some((r) => r.blob.endsWith("o.db") && r.query.comp === "block");
            while (!staged()) await new Promise((r) => setTimeout(r, 5));
            abort.abort(new Error("stopped by the test"));
          }
          yield Buffer.alloc(MiB, i);
        }
      })(),
    );
    await assert.rejects(store.put("o.db", body, { immutable: true, signal: abort.signal }));
    assert.equal(await store.stat("o.db"), null);
    assert.deepEqual(standin.versions(container, "backups/o.db"), []);
    for await (const l of store.leftovers()) assert.fail(`leftover ${l.key}`);
    const commits = writes().filter((r) => r.query.comp === "blocklist");
    assert.ok(commits.length >= 1, "the staged blocks were discarded by an empty commit");
    for (const c of commits) assert.equal(c.headers["x-ms-immutability-policy-mode"], undefined);
  });

  test("prepare: a container without version-level immutability is one line before anything is written", async () => {
    standin.createContainer(`${container}-plain`);
    const store = makeStore({ mode: "governance", days: 1 }, `${container}-plain`);
    const err = await store.prepare().catch((e: unknown) => e);
    assert.ok(err instanceof UsageError);
    assert.match(
      userLine(err),
      /has no version-level immutability \(create it with az storage container-rm create .*--enable-vlw/,
    );
    const putErr = await store
      .put("e.db", Readable.from([Buffer.alloc(3 * MiB)]), { immutable: true })
      .catch((e: unknown) => e);
    assert.match(
      userLine(putErr),
      new RegExp(
        `^upload azblob://${container}-plain/backups/e.db: container .* has no version-level immutability`,
      ),
    );
    assert.equal(writes().length + standin.requests.filter((r) => r.query.comp === "block").length, 0);
    // Without a lock asked, prepare sends nothing, and data goes up as before.
    standin.requests.length = 0;
    const plain = makeStore(undefined, `${container}-plain`);
    await plain.prepare();
    assert.equal(standin.requests.length, 0);
    await plain.put("e.db", Readable.from([Buffer.from("x")]), { immutable: true });
    assert.deepEqual(await plain.retention("e.db"), NO_RETENTION);
  });

  test("prepare: a container that is there and has it passes; one whose properties are denied says it cannot tell", async () => {
    await makeStore({ mode: "governance", days: 1 }).prepare();
    standin.denyContainerProperties = true;
    const err = await makeStore({ legalHold: true })
      .prepare()
      .catch((e: unknown) => e);
    assert.match(userLine(err), /^cannot tell whether container c\d+ has version-level immutability/);
    const missing = await makeStore({ legalHold: true }, "nosuchcontainer")
      .prepare()
      .catch((e: unknown) => e);
    assert.match(userLine(missing), /container nosuchcontainer does not exist/);
  });

  test("delete where the container's properties cannot be read: the service's 409 becomes one line with the hold", async () => {
    const writer = makeStore({ mode: "governance", days: 2 });
    await writer.put("f.db", Readable.from([Buffer.from("f")]), { immutable: true });
    standin.denyContainerProperties = true;
    const store = makeStore();
    const err = await store.delete("f.db").catch((e: unknown) => e);
    assert.match(
      userLine(err),
      /^delete azblob:\/\/c\d+\/backups\/f\.db: object lock governance until \d{4}-\d\d-\d\d$/,
    );
    assert.equal(deletes().length, 1, "one Delete Blob, refused by the service");
    assert.ok(await store.stat("f.db"));
  });

  test("an expired policy no longer holds: delete removes every version of the key, overwritten ones too", async () => {
    const store = makeStore();
    // A whole second (the header keeps no more), a little ahead.
    const until = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000);
    const lock: Retention = { mode: "governance", retainUntil: until, legalHold: false };
    await store.put("g.db", Readable.from([Buffer.from("one")]), { retention: lock });
    await store.put("g.db", Readable.from([Buffer.from("two")]), { retention: lock });
    assert.equal(standin.versions(container, "backups/g.db").length, 2);
    await assert.rejects(store.delete("g.db"), /object lock governance until/);
    await sleep(until.getTime() - Date.now() + 200);
    await store.delete("g.db");
    assert.equal(standin.versions(container, "backups/g.db").length, 0);
    assert.equal(await store.stat("g.db"), null);
    await store.delete("g.db"); // idempotent
  });

  test("credentials that may not delete versions: the key goes for every reader, one warning says what stays", async () => {
    const warnings: string[] = [];
    const store = makeStore(undefined, container, {}, (line) => warnings.push(line));
    await store.put("k.db", Readable.from([Buffer.from("1")]));
    await store.put("k.db", Readable.from([Buffer.from("2")]));
    await store.put("l.db", Readable.from([Buffer.from("3")]));
    standin.denyVersionDeletes = true;
    await store.delete("k.db");
    await store.delete("l.db");
    assert.equal(await store.stat("k.db"), null);
    assert.equal(await store.stat("l.db"), null);
    for await (const o of store.list()) assert.fail(`listed ${o.key}`);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0] ?? "",
      /may not delete blob versions: deleted backups keep their previous versions .*deleteBlobVersion\/action/,
    );
    assert.equal(standin.versions(container, "backups/k.db").length, 2);
    // With the permission, a later delete of the key finds its versions and removes them.
    standin.denyVersionDeletes = false;
    await store.delete("k.db");
    assert.equal(standin.versions(container, "backups/k.db").length, 0);
  });

  test("a held backup whose current version someone else deleted is still listed, read and refused to delete", async () => {
    const store = makeStore({ mode: "compliance", days: 2 });
    await store.put("m.db", Readable.from([Buffer.from("held data")]), { immutable: true });
    await store.put("n.db", Readable.from([Buffer.from("free")]));
    // Another client deletes the current versions, where Azure keeps a held one as a previous version.
    standin.heldCurrentDelete = "keep";
    const other = new BlobServiceClient(
      standin.endpoint,
      new StorageSharedKeyCredential(standin.account, KEY),
    );
    for (const name of ["backups/m.db", "backups/n.db"])
      await other.getContainerClient(container).getBlobClient(name).delete();
    const listed: [string, boolean][] = [];
    for await (const o of store.list()) listed.push([o.key, o.behindDeleteMarker === true]);
    assert.deepEqual(
      listed,
      [["m.db", true]],
      "the held one is listed behind the delete, the free one is not",
    );
    assert.equal((await store.stat("m.db"))?.behindDeleteMarker, true);
    assert.equal(await store.stat("n.db"), null);
    assert.equal((await readAll(await store.get("m.db"))).toString(), "held data");
    await assert.rejects(store.get("n.db"), NotFoundError);
    assert.equal((await store.retention("m.db")).mode, "compliance");
    const err = await store.delete("m.db").catch((e: unknown) => e);
    assert.match(
      userLine(err),
      /^delete azblob:\/\/c\d+\/backups\/m\.db: object lock compliance until .* on an earlier version of it$/,
    );
    assert.equal(standin.versions(container, "backups/m.db").length, 1);
    // The free one's previous version is removed by a delete of its key.
    await store.delete("n.db");
    assert.equal(standin.versions(container, "backups/n.db").length, 0);
  });

  test("replacing a locked blob (rekey's step): the new version takes the lock, the old one stays held beside it", async () => {
    const store = makeStore({ mode: "compliance", days: 5 });
    await store.put("h.db", Readable.from([Buffer.from("old key")]), { immutable: true });
    const lock = await store.retention("h.db");
    await store.put("h.db.rekey-staging", Readable.from([Buffer.from("new key")]));
    await replaceObject(store, "h.db.rekey-staging", "h.db", { retention: lock });
    assert.equal((await readAll(await store.get("h.db"))).toString(), "new key");
    assert.deepEqual(await store.retention("h.db"), lock);
    const versions = standin.versions(container, "backups/h.db");
    assert.deepEqual(
      versions.map((v) => [v.data.toString(), v.current, v.policy?.mode, v.policy?.until.getTime()]),
      [
        ["old key", false, "locked", lock.retainUntil?.getTime()],
        ["new key", true, "locked", lock.retainUntil?.getTime()],
      ],
    );
    // The staging blob is gone with every version; the key itself is refused.
    assert.equal(standin.versions(container, "backups/h.db.rekey-staging").length, 0);
    await assert.rejects(store.delete("h.db"), /object lock compliance until/);
  });

  test("prune keeps held backups and says why, and deletes them, every version, once the policy has expired", async () => {
    const store = makeStore();
    const snap = fakeSnapshot(3);
    const until = new Date(Math.ceil((Date.now() + 2500) / 1000) * 1000);
    // Backups written as save writes them on a locking store: each object under a policy (here a short one).
    const locking = withOverrides(store, {
      put: (key, body, options) =>
        store.put(key, body, {
          ...options,
          retention: { mode: "compliance", retainUntil: until, legalHold: false },
        }),
    });
    const keys: string[] = [];
    for (let d = 1; d <= 3; d++)
      keys.push(
        await plantBackup(locking, snap, {
          cluster: "prod",
          time: new Date(Math.floor((Date.now() - d * DAY) / 1000) * 1000),
        }),
      );
    const plan = (r: Awaited<ReturnType<typeof pruneBackups>>) =>
      r.backups.map((b) => [b.entry.key, b.action, b.reasons.map((x) => x.hold ?? x.rule).join("+")]);
    const day = until.toISOString().slice(0, 10);
    const first = await pruneBackups(store, { last: 1 });
    assert.deepEqual(plan(first), [
      [keys[0], "keep", "newest+last"],
      [keys[1], "keep", `object lock compliance until ${day}`],
      [keys[2], "keep", `object lock compliance until ${day}`],
    ]);
    assert.deepEqual(first.failures, []);
    assert.equal(deletes().length, 0, "prune asked the store to delete nothing held");
    await sleep(Math.max(0, until.getTime() - Date.now()) + 200);
    const second = await pruneBackups(store, { last: 1 });
    assert.deepEqual(
      second.backups.map((b) => [b.entry.key, b.action, b.result ?? ""]),
      [
        [keys[0], "keep", ""],
        [keys[1], "delete", "deleted"],
        [keys[2], "delete", "deleted"],
      ],
    );
    assert.deepEqual(second.failures, []);
    for (const key of [keys[1], keys[2]]) {
      assert.equal(standin.versions(container, `backups/${key}`).length, 0);
      assert.equal(standin.versions(container, `backups/${key}.json`).length, 0);
    }
    assert.equal(standin.versions(container, `backups/${keys[0]}`).length, 1);
  });
});

describe("AzureBlobStore immutability against Azurite, which has no version-level immutability", () => {
  let azurite: TestAzurite;
  before(async () => {
    azurite = await startAzurite();
    await azurite.createContainer("backups");
  });
  after(async () => {
    await azurite.stop();
  });

  test("Azurite's containers never report it: a lock asked for is one line at prepare and at the first locked put", async () => {
    const store = new AzureBlobStore({
      container: "backups",
      settings: { endpoint: azurite.endpoint, objectLock: { mode: "compliance", days: 1 } },
      secrets: { accountKey: azurite.key },
    });
    const err = await store.prepare().catch((e: unknown) => e);
    assert.ok(err instanceof UsageError);
    assert.equal(
      describeError(err),
      "container backups in storage account devstoreaccount1 has no version-level immutability (create it with " +
        "az storage container-rm create --storage-account devstoreaccount1 --name backups --enable-vlw (or migrate " +
        "it with az storage container-rm migrate-vlw, or enable it for the account; blob versioning must be on), " +
        "or ask for no object lock)",
    );
    const putErr = await store
      .put("x.db", Readable.from([Buffer.from("x")]), { immutable: true })
      .catch((e: unknown) => e);
    assert.match(
      describeError(putErr),
      /^upload azblob:\/\/backups\/x\.db: container backups .* has no version-level immutability/,
    );
    assert.equal(await store.stat("x.db"), null);
  });

  test("without a lock, retention is NO_RETENTION (no blob there can carry a policy) and delete works as before", async () => {
    const store = new AzureBlobStore({
      container: "backups",
      settings: { endpoint: azurite.endpoint },
      secrets: { accountKey: azurite.key },
    });
    await store.put("y.db", Readable.from([Buffer.from("y")]), { immutable: true });
    assert.deepEqual(await store.retention("y.db"), NO_RETENTION);
    await store.delete("y.db");
    assert.equal(await store.stat("y.db"), null);
  });
});
