/**
 * GCS object retention against fake-gcs-server (v1.56.1, built from its Go module; a stand-in for the service),
 * store first, then the built CLI: `save --object-lock` / `--legal-hold` to gs://, `list` and `verify` showing
 * the lock, `prune` keeping a held backup with the reason and deleting it once its date has passed, and a bucket
 * without object retention refused at start in one line.
 *
 * What fake-gcs-server 1.56.1 does with immutability, as read in its source and pinned by the first test:
 * - it keeps an object's `retention` ({mode, retainUntilTime}) given in a resumable session's initiation, returns
 *   it in the object resource, and lets an `Unlocked` one be changed by PATCH (a `Locked` one not): yes;
 * - `temporaryHold` / `eventBasedHold`: dropped (not kept, not returned);
 * - the bucket resource has no `objectRetention` and no `retentionPolicy` (bucket lock): neither can be set;
 * - it deletes and replaces held objects (no 403 `retentionPolicyNotMet`).
 * So here the bucket's `objectRetention: {mode: "Enabled"}` comes from a loopback STAND-IN proxy in front of the
 * emulator (test/fixtures/gcs-retention-proxy.ts) that adds it to the bucket resource (and records the session
 * initiations), and what the emulator lacks (holds, bucket lock, refused deletes) is covered against a stand-in
 * for the JSON API in test/store/gcs-retention.test.ts (the proxy can refuse held deletes too: the daemon and
 * operator lock tests use that).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { GcsStore } from "../../src/store/gcs.ts";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type GcsRetentionProxy, startGcsRetentionProxy } from "../fixtures/gcs-retention-proxy.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";

const DAY_MS = 86_400_000;

describe("GCS object retention against fake-gcs-server", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let gcs: TestGcsServer;
  let proxy: GcsRetentionProxy;
  let etcd: EtcdServer;
  let work: string;
  let snapshot: string;
  let recipient: string;
  let identity: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-gcs-retention-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 200, { prefix: "/registry/secrets/default/s-", valueSize: 200 });
    snapshot = join(work, "snap.db");
    await etcd.ctl(["snapshot", "save", snapshot]);
    gcs = await startGcsServer();
    await gcs.createBucket("locked");
    await gcs.createBucket("plain");
    proxy = await startGcsRetentionProxy(gcs.endpoint, ["locked"]);
    env = {
      ETCD_BACKUP_GCS_ENDPOINT: proxy.endpoint,
      GOOGLE_APPLICATION_CREDENTIALS: "",
      STORAGE_EMULATOR_HOST: "",
    };
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await proxy?.close();
    await gcs?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const save = async (to: string, extra: string[]) => {
    const out = await runCli(
      [
        "save",
        ...["--from-file", snapshot, "--to", to, "--cluster", "prod", "--recipient", recipient, "-o", "json"],
        ...extra,
      ],
      { env },
    );
    assertOk(out);
    return JSON.parse(out.stdout) as { key: string };
  };
  /** Sets an object's retention through the emulator's JSON API (PATCH), as someone with the permission would. */
  const patchRetention = async (
    bucket: string,
    name: string,
    retention: { mode: string; retainUntilTime: string },
  ) => {
    const res = await fetch(`${gcs.endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ retention }),
    });
    assert.equal(res.status, 200, await res.text());
  };
  const objectResource = async (bucket: string, name: string) =>
    (await (
      await fetch(`${gcs.endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}`)
    ).json()) as Record<string, unknown>;

  test("what the emulator does: keeps an object's retention, drops holds, has no bucket objectRetention, deletes held objects", async () => {
    const store = new GcsStore({
      bucket: "plain",
      prefix: "pin",
      settings: { endpoint: gcs.endpoint, maxAttempts: 1 },
    });
    const until = new Date(Date.now() + 2 * DAY_MS);
    await store.put("held", Readable.from([Buffer.from("x")]), {
      retention: { mode: "compliance", retainUntil: until, legalHold: true },
    });
    const resource = await objectResource("plain", "pin/held");
    // Go prints the time with trailing zeros of the fraction dropped (…17.09Z for …17.090Z): compare instants.
    const retention = resource.retention as { mode?: string; retainUntilTime?: string } | undefined;
    assert.equal(retention?.mode, "Locked");
    assert.equal(
      new Date(retention?.retainUntilTime ?? "").getTime(),
      until.getTime(),
      retention?.retainUntilTime,
    );
    assert.equal(resource.temporaryHold, undefined, "fake-gcs-server 1.56.1 drops temporaryHold");
    // Our reading of it: the retention, and no hold (the emulator lost it).
    assert.deepEqual(await store.retention("held"), {
      mode: "compliance",
      retainUntil: until,
      legalHold: false,
    });
    const bucket = (await (await fetch(`${gcs.endpoint}/storage/v1/b/plain`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(bucket.objectRetention, undefined, "no per-object retention flag on the emulator's buckets");
    assert.equal(bucket.retentionPolicy, undefined, "no bucket lock on the emulator");
    // GCS refuses this (403 retentionPolicyNotMet, see test/store/gcs-retention.test.ts); the emulator deletes.
    await store.delete("held");
    assert.equal(await store.stat("held"), null, "fake-gcs-server 1.56.1 deletes a held object");
  });

  test("a bucket without object retention is one line at start, before anything is written", async () => {
    const out = await runCli(
      [
        "save",
        ...["--from-file", snapshot, "--to", "gs://plain/p", "--recipient", recipient],
        ...["--object-lock", "compliance", "--object-lock-days", "1"],
      ],
      { env },
    );
    assert.equal(out.code, 2, out.stderr);
    assert.equal(
      out.stderr,
      "etcd-backup: bucket plain has no object retention (use a bucket created with: gcloud storage buckets create gs://plain --enable-per-object-retention, or ask for no object lock)\n",
    );
    assert.deepEqual(
      (await gcs.objectNames("plain")).filter((n) => n.startsWith("p/")),
      [],
    );
  });

  test("save --object-lock (and the old --s3-object-lock names) -> list and verify show it -> prune keeps it with the reason, then deletes it after its date", async () => {
    proxy.initiations.length = 0;
    const before = Date.now();
    const first = await save("gs://locked/prod", [
      "--s3-object-lock",
      "governance",
      "--s3-object-lock-days",
      "1",
    ]);
    const second = await save("gs://locked/prod", ["--object-lock", "compliance", "--object-lock-days", "2"]);
    // The SDK's session initiations carry the retention for the backup and its manifest, not for the markers.
    const sent = (name: string) =>
      proxy.initiations.find((i) => i.name === `prod/${name}`)?.body.retention as
        | { mode: string; retainUntilTime: string }
        | undefined;
    assert.equal(sent(first.key)?.mode, "Unlocked");
    assert.equal(sent(`${first.key}.json`)?.mode, "Unlocked");
    assert.equal(sent(second.key)?.mode, "Locked");
    const untilSecond = new Date(sent(second.key)!.retainUntilTime).getTime();
    assert.ok(untilSecond >= before + 2 * DAY_MS && untilSecond <= Date.now() + 2 * DAY_MS + 1000);
    const unlocked = proxy.initiations.filter((i) => !i.body.retention).map((i) => i.name);
    assert.ok(
      unlocked.length > 0 && unlocked.every((n) => !n.endsWith(".age") && !n.endsWith(".age.json")),
      unlocked.join(", "),
    );
    // The emulator kept them.
    assert.equal(
      ((await objectResource("locked", `prod/${second.key}`)) as { retention?: { mode: string } }).retention
        ?.mode,
      "Locked",
    );

    const list = await runCli(["list", "--to", "gs://locked/prod", "-o", "json"], { env });
    assertOk(list);
    const listed = JSON.parse(list.stdout) as {
      name: string;
      lock?: { mode: string; retainUntil: string };
    }[];
    assert.equal(listed.find((e) => e.name === first.key)?.lock?.mode, "governance");
    assert.equal(listed.find((e) => e.name === second.key)?.lock?.mode, "compliance");
    const table = await runCli(["list", "--to", "gs://locked/prod"], { env });
    assertOk(table);
    assert.match(table.stdout, /compliance until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    const verify = await runCli(["verify", second.key, "--to", "gs://locked/prod", "-i", identity], { env });
    assertOk(verify);
    assert.match(verify.stdout, /^lock: compliance until \d{4}-\d\d-\d\dT/m);

    // prune --keep-last 1: the older one is kept by no rule but by its lock; dry run and real run agree.
    const firstUntil = new Date(sent(first.key)!.retainUntilTime).toISOString().slice(0, 10);
    const pruned = async (dry: string[]) => {
      const out = await runCli(
        ["prune", "--to", "gs://locked/prod", "--keep-last", "1", "-o", "json", ...dry],
        {
          env,
        },
      );
      assertOk(out);
      return JSON.parse(out.stdout) as {
        backups: { name: string; action: string; reasons: { rule: string; hold?: string }[] }[];
        failures: unknown[];
      };
    };
    for (const dry of [["--dry-run"], []]) {
      const report = await pruned(dry);
      const old = report.backups.find((b) => b.name === first.key);
      assert.equal(old?.action, "keep", JSON.stringify(report));
      assert.deepEqual(old?.reasons, [
        { rule: "locked", hold: `object lock governance until ${firstUntil}` },
      ]);
      assert.deepEqual(report.failures, []);
    }
    const text = await runCli(["prune", "--to", "gs://locked/prod", "--keep-last", "1", "--dry-run"], {
      env,
    });
    assertOk(text);
    assert.match(text.stdout, new RegExp(`kept: object lock governance until ${firstUntil}`));

    // Its retention shortened to a few seconds (Unlocked allows it, with storage.objects.overrideUnlockedRetention):
    // held until then, deleted by the next prune after.
    const soon = new Date(Math.ceil((Date.now() + 3000) / 1000) * 1000);
    for (const name of [first.key, `${first.key}.json`])
      await patchRetention("locked", `prod/${name}`, {
        mode: "Unlocked",
        retainUntilTime: soon.toISOString(),
      });
    assert.equal((await pruned([])).backups.find((b) => b.name === first.key)?.action, "keep");
    await sleep(Math.max(0, soon.getTime() - Date.now()) + 500);
    const after = await pruned([]);
    assert.equal(after.backups.find((b) => b.name === first.key)?.action, "delete", JSON.stringify(after));
    assert.deepEqual(after.failures, []);
    const names = await gcs.objectNames("locked");
    assert.ok(
      !names.includes(`prod/${first.key}`) && !names.includes(`prod/${first.key}.json`),
      names.join(", "),
    );
    assert.ok(names.includes(`prod/${second.key}`), "the newest stays");
  });

  test("rekey of a held object: GCS cannot replace it, so it is left as it is (old recipients) and the run says why", async () => {
    const held = await save("gs://locked/rekey", ["--object-lock", "compliance", "--object-lock-days", "1"]);
    const beforeNames = await gcs.objectNames("locked");
    const before = await objectResource("locked", `rekey/${held.key}`);
    const other = join(work, "other");
    mkdirSync(other, { recursive: true });
    const next = await keygen(other);
    const out = await runCli(
      [
        ...["rekey", held.key, "--to", "gs://locked/rekey", "--identity", identity],
        ...["--recipient", next.recipient, "--remove-recipient", recipient],
      ],
      { env },
    );
    assert.equal(out.code, 1, `${out.stdout}${out.stderr}`);
    assert.match(
      out.stderr,
      new RegExp(
        `^etcd-backup: ${held.key.replace(/\./g, "\\.")} is held \\(compliance until [^)]+\\) and Google Cloud Storage does not let a held object be replaced: it keeps its old recipients \\(rekey it after \\d{4}-\\d\\d-\\d\\d; until then the old keys still open it\\)\n$`,
      ),
    );
    assert.deepEqual(
      await gcs.objectNames("locked"),
      beforeNames,
      "nothing written: no staging object, no journal",
    );
    const after = await objectResource("locked", `rekey/${held.key}`);
    assert.equal(after.md5Hash, before.md5Hash, "the object is untouched");
  });

  test("--legal-hold: the session asks for a temporary hold (the emulator drops it: see the stand-in test for the rest)", async () => {
    proxy.initiations.length = 0;
    const held = await save("gs://locked/hold", ["--legal-hold"]);
    const body = proxy.initiations.find((i) => i.name === `hold/${held.key}`)?.body;
    assert.equal(body?.temporaryHold, true);
    assert.equal(body?.retention, undefined, "a hold alone sets no retention");
    const resource = await objectResource("locked", `hold/${held.key}`);
    assert.equal(resource.temporaryHold, undefined, "fake-gcs-server 1.56.1 drops temporaryHold");
    const noDays = await runCli(
      [
        "save",
        "--from-file",
        snapshot,
        "--to",
        "gs://locked/hold",
        "--recipient",
        recipient,
        "--object-lock",
        "governance",
      ],
      { env },
    );
    assert.equal(noDays.code, 2);
    assert.match(
      noDays.stderr,
      /^etcd-backup: --object-lock-days: is required with --object-lock governance/,
    );
    assert.equal(noDays.stderr.trimEnd().split("\n").length, 1, "one line, no stack");
  });
});
