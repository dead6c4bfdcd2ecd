/**
 * The built CLI against fake-gcs-server (a Google Cloud Storage emulator built from its Go module; a stand-in
 * for the service): `save --to gs://...` of a real etcd's snapshot in many resumable chunks, `list`, `restore`
 * (a real etcd started on the restored snapshot serves every key with etcd's value, compared with etcdctl),
 * `prune`; a save killed at seeded points mid-upload leaves no object of its own (only the pending marker,
 * listed as incomplete and pruned); unusable credentials are one line without their contents.
 *
 * Seeded; the seed is printed in the test's name; rerun one with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { assertOk, keygen, registerSecret, runCli } from "../fixtures/cli.ts";
import { etcdFromSnapshot } from "../fixtures/etcd-restore.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { SeededRandom } from "../fixtures/seeded-random.ts";

const SEED = Number(process.env.ETCD_BACKUP_TEST_SEED ?? Date.now() % 2 ** 31);
const MiB = 1024 * 1024;

interface Listed {
  name: string;
  state: string;
}

/** Every key and value under / as etcdctl shows them (base64 in its JSON). */
async function allKeys(etcd: EtcdServer): Promise<[string, string][]> {
  const out = JSON.parse(await etcd.ctl(["get", "", "--from-key", "-w", "json"])) as {
    kvs?: { key: string; value?: string }[];
  };
  return (out.kvs ?? []).map((kv) => [kv.key, kv.value ?? ""]);
}

describe(`save to Google Cloud Storage (fake-gcs-server) and back (seed ${SEED})`, {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let etcd: EtcdServer;
  let gcs: TestGcsServer;
  let work: string;
  let identity: string;
  let recipient: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-gcs-e2e-"));
    etcd = await startEtcd();
    // About 8 MiB of values in 1 MiB chunks, and keys with distinct random values to compare.
    await fillKeys(etcd, 8000, { prefix: "/registry/secrets/default/s-", valueSize: 1000 });
    for (let i = 0; i < 40; i++)
      await etcd.ctl(["put", `/registry/configmaps/default/c-${i}`, randomBytes(24).toString("hex")]);
    gcs = await startGcsServer();
    await gcs.createBucket("backups");
    env = {
      ETCD_BACKUP_GCS_ENDPOINT: gcs.endpoint,
      ETCD_BACKUP_GCS_CHUNK_SIZE: "1",
      // No credentials: the emulator takes none, and none may be looked for (no metadata server here).
      GOOGLE_APPLICATION_CREDENTIALS: "",
      STORAGE_EMULATOR_HOST: "",
    };
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await gcs?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const save = (to: string, extra: NodeJS.ProcessEnv = {}, args: string[] = []) =>
    runCli(
      [
        "save",
        ...["--endpoints", etcd.endpoint, "--to", to, "--cluster", "prod"],
        ...["--recipient", recipient, "-o", "json", ...args],
      ],
      { env: { ...env, ...extra } },
    );
  const list = async (to: string): Promise<Listed[]> => {
    const r = await runCli(["list", "--to", to, "-o", "json"], { env });
    assertOk(r);
    return JSON.parse(r.stdout) as Listed[];
  };

  test("save --to gs:// -> list -> restore: etcd on the restored snapshot has every key; prune keeps the newest", async () => {
    const first = await save("gs://backups/prod");
    assertOk(first);
    const { key, manifest } = JSON.parse(first.stdout) as { key: string; manifest: { sha256: string } };
    assert.match(key, /^prod-.*\.snap\.zst\.age$/);
    const names = await gcs.objectNames("backups");
    assert.ok(names.includes(`prod/${key}`), names.join(", "));
    assert.ok(names.includes(`prod/${key}.json`), "the manifest is beside the object");

    assert.deepEqual(
      (await list("gs://backups/prod")).map((e) => [e.name, e.state]),
      [[key, "complete"]],
    );
    const out = join(work, "restored.db");
    assertOk(
      await runCli(["restore", "latest", "--to", "gs://backups/prod", "-i", identity, "--to-file", out], {
        env,
      }),
    );
    assert.equal(execFileSync("sha256sum", [out]).toString().split(" ")[0], manifest.sha256);
    assert.ok(statSync(out).size > 8 * MiB);

    const restored = await etcdFromSnapshot(out, { release: etcd.release });
    try {
      const want = await allKeys(etcd);
      const got = await allKeys(restored);
      assert.equal(got.length, want.length);
      assert.ok(got.length >= 8040);
      assert.deepEqual(got, want);
    } finally {
      await restored.destroy();
    }
    assertOk(await runCli(["verify", "latest", "--to", "gs://backups/prod", "-i", identity], { env }));
    // status of the stored backup = etcdutl snapshot status of the restored file; inspect reads it too.
    const etcdutlStatus = execFileSync(
      etcd.peer.etcdutl ?? etcd.peer.etcdctl,
      ["snapshot", "status", "-w", "json", out],
      { env: etcd.peer.ctlEnv },
    ).toString();
    const status = await runCli(
      ["status", "latest", "--to", "gs://backups/prod", "-i", identity, "-w", "json"],
      {
        env,
      },
    );
    assertOk(status);
    assert.equal(status.stdout, etcdutlStatus.replace(/\n?$/, "\n"));
    assertOk(await runCli(["inspect", "latest", "--to", "gs://backups/prod", "-i", identity], { env }));

    // A second backup a second later, then prune down to one: the older one goes, object and manifest.
    await sleep(1100);
    const second = await save("gs://backups/prod");
    assertOk(second);
    const newer = (JSON.parse(second.stdout) as { key: string }).key;
    assertOk(await runCli(["prune", "--to", "gs://backups/prod", "--keep-last", "1"], { env }));
    assert.deepEqual(
      (await list("gs://backups/prod")).map((e) => [e.name, e.state]),
      [[newer, "complete"]],
    );
    const after = await gcs.objectNames("backups");
    assert.ok(!after.some((n) => n.startsWith(`prod/${key}`)), after.join(", "));
  });

  test("a save killed mid-upload at seeded points leaves no object of its own; prune removes its marker", async () => {
    const rand = new SeededRandom(SEED);
    const to = "gs://backups/crash";
    // Uncompressed, so that the stored bytes are the snapshot's and a kill point falls where it is meant to.
    const first = await save(to, {}, ["--compress", "none"]);
    assertOk(first);
    const complete = [(JSON.parse(first.stdout) as { key: string }).key];
    const size = statSync(join(work, "restored.db")).size;
    // Inside the first chunk, and well into the chunked upload.
    const points = [rand.int(1, MiB - 1), rand.int(2 * MiB, Math.floor(size * 0.8))];
    for (const point of points) {
      const before = await gcs.objectNames("backups");
      const killed = await save(to, { ETCD_BACKUP_TEST_KILL_AFTER_BYTES: String(point) }, [
        "--compress",
        "none",
      ]);
      assert.equal(killed.code, null, `the save was to be killed after ${point} bytes: ${killed.stderr}`);
      const added = (await gcs.objectNames("backups")).filter((n) => !before.includes(n));
      // Only the run's pending marker (written before the upload) may be there: the snapshot's resumable
      // session was never finalised, so no object of it exists.
      assert.ok(
        added.every((n) => n.endsWith(".pending")),
        `killed after ${point} bytes, the bucket gained ${added.join(", ")}`,
      );
      const entries = await list(to);
      assert.deepEqual(
        entries.filter((e) => e.state === "complete").map((e) => e.name),
        complete,
        `after a kill at ${point} bytes the complete backups changed`,
      );
    }
    await sleep(1100);
    assertOk(await runCli(["prune", "--to", to, "--keep-last", "100", "--incomplete-grace", "1s"], { env }));
    assert.deepEqual(
      (await list(to)).map((e) => `${e.state} ${e.name}`),
      complete.map((k) => `complete ${k}`),
    );
    assert.ok(
      !(await gcs.objectNames("backups")).some((n) => n.startsWith("crash/") && n.endsWith(".pending")),
    );
  });

  test("unusable credentials are one line naming the file, never its contents", async () => {
    const marker = `not-a-key-${randomBytes(6).toString("hex")}`;
    registerSecret(marker, "the broken credentials' content");
    const cases: [string, RegExp][] = [
      [`{"type": "service_account", "private_key": "${marker}"`, /not JSON/],
      [
        JSON.stringify({
          type: "service_account",
          client_email: "backup@example.iam.gserviceaccount.com",
          private_key: `-----BEGIN PRIVATE KEY-----\n${marker}\n-----END PRIVATE KEY-----\n`,
        }),
        /its private_key is not a PEM private key/,
      ],
      [
        JSON.stringify({ type: "service_account", private_key: marker }),
        /service_account without client_email/,
      ],
    ];
    for (const [content, reason] of cases) {
      const file = join(work, "bad-key.json");
      writeFileSync(file, content);
      for (const args of [
        ["save", "--endpoints", etcd.endpoint, "--to", "gs://backups/x", "--no-encrypt"],
        ["list", "--to", "gs://backups/x"],
      ]) {
        const r = await runCli(args, { env: { ...env, GOOGLE_APPLICATION_CREDENTIALS: file } });
        assert.equal(r.code, 2, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^etcd-backup: cannot use the Google credentials in .*bad-key\.json/);
        assert.match(lines[0]!, reason);
        assert.ok(!r.stderr.includes(marker), "the credentials' content was printed");
      }
    }
  });

  test("a missing bucket is one line that says to create it", async () => {
    const r = await runCli(
      ["save", "--endpoints", etcd.endpoint, "--to", "gs://no-such-bucket/x", "--no-encrypt"],
      {
        env,
      },
    );
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /bucket no-such-bucket does not exist.*gcloud storage buckets create gs:\/\/no-such-bucket/,
    );
  });
});
