/**
 * The built CLI against Azure Blob Storage, with Azurite (Microsoft's emulator) as the service: save -> list ->
 * restore (compared with etcdctl, key by key, on an etcd restored from it) -> prune; a save killed at seeded points
 * mid-upload leaves nothing listed complete, and prune discards its staged blocks; a wrong key and a missing
 * container are one line each. Seeded; the seed is printed on failure; rerun with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { startAzurite, type TestAzurite } from "../fixtures/azurite-server.ts";
import { assertOk, keygen, registerSecret, runCli } from "../fixtures/cli.ts";
import { etcdFromSnapshot } from "../fixtures/etcd-restore.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { SeededRandom, testSeed, withSeed } from "../fixtures/seeded-random.ts";
import { type Listed, snapshotFileSaves } from "../fixtures/snapshot-file-saves.ts";

const SEED = testSeed(Date.now() % 2 ** 31);
const MiB = 1024 * 1024;

/** Every key and value etcd holds, as etcdctl prints them (base64), in key order. */
async function allKeys(etcd: EtcdServer): Promise<[string, string][]> {
  const out = JSON.parse(await etcd.ctl(["get", "", "--prefix", "-w", "json"])) as {
    kvs?: { key: string; value: string }[];
  };
  return (out.kvs ?? []).map((kv) => [kv.key, kv.value]);
}

describe(`save to Azure Blob (Azurite) and back (seed ${SEED})`, () => {
  let etcd: EtcdServer;
  let azurite: TestAzurite;
  let work: string;
  let identity: string;
  let recipient: string;
  let env: NodeJS.ProcessEnv;
  let blobs: BlobServiceClient;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-azure-e2e-"));
    etcd = await startEtcd();
    // About 9 MB of snapshot: several 1 MiB blocks, so kills fall between staged blocks.
    await fillKeys(etcd, 2200, { prefix: "/registry/configmaps/default/big-", valueSize: 4000 });
    azurite = await startAzurite();
    await azurite.createContainer("backups");
    registerSecret(azurite.key, "Azurite's account key");
    env = {
      AZURE_STORAGE_ACCOUNT: azurite.account,
      AZURE_STORAGE_KEY: azurite.key,
      ETCD_BACKUP_AZURE_ENDPOINT: azurite.endpoint,
      ETCD_BACKUP_AZURE_BLOCK_SIZE: "1",
    };
    blobs = new BlobServiceClient(
      azurite.endpoint,
      new StorageSharedKeyCredential(azurite.account, azurite.key),
    );
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await azurite?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("save --to azblob:// -> list -> restore gives etcd's every key -> prune keeps the newest", async () => {
    const to = "azblob://backups/prod";
    const save = async () => {
      const r = await runCli(
        [
          "save",
          "--endpoints",
          etcd.endpoint,
          "--to",
          to,
          "--cluster",
          "prod",
          "--recipient",
          recipient,
          "-o",
          "json",
        ],
        { env },
      );
      assertOk(r);
      return JSON.parse(r.stdout) as { key: string; manifest: { sha256: string } };
    };
    const { key, manifest } = await save();
    assert.match(key, /^prod-.*\.snap\.zst\.age$/);

    // The object as any Azure client reads it: age and zstd, the real tools, give what etcd sent.
    const enc = join(work, "obj.age");
    await blobs.getContainerClient("backups").getBlockBlobClient(`prod/${key}`).downloadToFile(enc);
    execFileSync("age", ["-d", "-i", identity, "-o", join(work, "obj.zst"), enc]);
    execFileSync("zstd", ["-q", "-d", join(work, "obj.zst"), "-o", join(work, "obj.db")]);
    assert.equal(
      execFileSync("sha256sum", [join(work, "obj.db")])
        .toString()
        .split(" ")[0],
      manifest.sha256,
    );

    const list = await runCli(["list", "--to", to, "-o", "json"], { env });
    assertOk(list);
    assert.deepEqual(
      (JSON.parse(list.stdout) as Listed[]).map((e) => [e.name, e.state]),
      [[key, "complete"]],
    );

    // The same through AZURE_STORAGE_CONNECTION_STRING alone, as the Azure portal hands it out.
    const connectionString = `DefaultEndpointsProtocol=http;AccountName=${azurite.account};AccountKey=${azurite.key};BlobEndpoint=${azurite.endpoint};`;
    const viaConnectionString = await runCli(["list", "--to", to, "-o", "json"], {
      env: {
        AZURE_STORAGE_CONNECTION_STRING: connectionString,
        AZURE_STORAGE_ACCOUNT: "",
        AZURE_STORAGE_KEY: "",
      },
    });
    assertOk(viaConnectionString);
    assert.deepEqual(JSON.parse(viaConnectionString.stdout), JSON.parse(list.stdout));

    const out = join(work, "restored.db");
    assertOk(await runCli(["restore", "latest", "--to", to, "-i", identity, "--to-file", out], { env }));
    assert.deepEqual(readFileSync(out), readFileSync(join(work, "obj.db")));
    assert.equal(statSync(out).size % 512, 32, "etcd's sha256 trailer kept");
    // A member restored from it by etcdutl serves exactly the keys and values the source serves.
    const restored = await etcdFromSnapshot(out, { release: etcd.release });
    try {
      const want = await allKeys(etcd);
      assert.ok(want.length >= 2200);
      assert.deepEqual(await allKeys(restored), want);
    } finally {
      await restored.destroy();
    }
    assertOk(await runCli(["verify", "latest", "--to", to, "-i", identity], { env }));

    // Two more, one second apart; prune keeps the newest and deletes the others' objects and manifests.
    await sleep(1100);
    await save();
    await sleep(1100);
    const newest = await save();
    assertOk(await runCli(["prune", "--to", to, "--keep-last", "1"], { env }));
    const after = await runCli(["list", "--to", to, "-o", "json"], { env });
    assertOk(after);
    assert.deepEqual(
      (JSON.parse(after.stdout) as Listed[]).map((e) => [e.name, e.state]),
      [[newest.key, "complete"]],
    );
    const names: string[] = [];
    for await (const b of blobs.getContainerClient("backups").listBlobsFlat({ prefix: "prod/" }))
      names.push(b.name);
    assert.deepEqual(names.sort(), [`prod/${newest.key}`, `prod/${newest.key}.json`]);
  });

  test("a save killed mid-upload leaves nothing listed complete; prune discards its staged blocks", async () => {
    const to = "azblob://backups/crash";
    const snapshot = join(work, "crash.db");
    await etcd.ctl(["snapshot", "save", snapshot]);
    const size = statSync(snapshot).size;
    const random = new SeededRandom(SEED);
    const { save, killedAfter, list } = snapshotFileSaves({ snapshot, to, recipient, env });
    /** Names under the prefix with staged blocks and no blob, as Azure lists them. */
    const uncommitted = async (): Promise<string[]> => {
      const container = blobs.getContainerClient("backups");
      const committed = new Set<string>();
      for await (const b of container.listBlobsFlat({ prefix: "crash/" })) committed.add(b.name);
      const out: string[] = [];
      for await (const b of container.listBlobsFlat({ prefix: "crash/", includeUncommitedBlobs: true }))
        if (!committed.has(b.name)) out.push(b.name);
      return out;
    };
    const first = await save();
    assertOk(first);
    const complete = [(JSON.parse(first.stdout) as { key: string }).key];
    await withSeed(SEED, async () => {
      // Past the fourth 1 MiB block, then anywhere before the end. The store sends two blocks at a time and fills a
      // third meanwhile, so only once the fourth is being read must one of the first two have been staged (a kill
      // at 1.5 MiB could fall while the first block was still in flight, on a loaded machine).
      assert.ok(size > 5 * MiB, `the snapshot is only ${size} bytes`);
      const points = [
        Math.floor(4 * MiB + random.next() * (size - 5 * MiB)),
        Math.floor(random.next() * size),
      ];
      for (const point of points) {
        await killedAfter(point);
        const entries = await list();
        assert.deepEqual(
          entries.filter((e) => e.state === "complete").map((e) => e.name),
          complete,
          `after a kill at ${point} of ${size} bytes something new is listed complete`,
        );
        assert.deepEqual(
          entries.filter((e) => e.state !== "complete" && e.state !== "incomplete"),
          [],
          "a killed save left something that is neither complete nor marked incomplete",
        );
      }
      const left = await uncommitted();
      assert.ok(
        left.length >= 1,
        "the kill past the first block left no staged blocks: was it killed at all?",
      );

      // Younger than the grace period: kept (an upload may still run). Older: discarded, with the markers.
      assertOk(await runCli(["prune", "--to", to, "--keep-last", "100"], { env }));
      assert.deepEqual(
        await uncommitted(),
        left,
        "prune discarded staged blocks younger than the grace period",
      );
      await sleep(1100);
      const pruned = await runCli(["prune", "--to", to, "--keep-last", "100", "--incomplete-grace", "1s"], {
        env,
      });
      assertOk(pruned);
      assert.deepEqual(await uncommitted(), [], pruned.stdout);
      assert.deepEqual(
        (await list()).map((e) => `${e.state} ${e.name}`),
        complete.map((k) => `complete ${k}`),
      );
      const rerun = await save();
      assertOk(rerun);
    });
  });

  test("a wrong account key is one line without the key; a missing container says to create it", async () => {
    const wrong = Buffer.from("this is not the account key of devstoreaccount1").toString("base64");
    registerSecret(wrong, "a wrong Azure key");
    const keyFile = join(work, "wrong.key");
    writeFileSync(keyFile, `${wrong}\n`);
    for (const [how, extraEnv, extraArgs] of [
      ["AZURE_STORAGE_KEY", { AZURE_STORAGE_KEY: wrong }, []],
      ["--azure-account-key-file", { AZURE_STORAGE_KEY: "" }, ["--azure-account-key-file", keyFile]],
    ] as const) {
      const r = await runCli(
        ["save", "--endpoints", etcd.endpoint, "--to", "azblob://backups/x", "--no-encrypt", ...extraArgs],
        { env: { ...env, ...extraEnv } },
      );
      assert.equal(r.code, 1, `${how}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${how}: ${r.stderr}`);
      assert.match(
        lines[0]!,
        /^etcd-backup: .*Azure (rejected the credentials|denied access).*check the account key/,
      );
      assert.ok(!r.stderr.includes(wrong), `${how}: the key is shown`);
    }
    const missing = await runCli(
      ["save", "--endpoints", etcd.endpoint, "--to", "azblob://no-such-container/x", "--no-encrypt"],
      { env },
    );
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr.trim(),
      /^etcd-backup: .*container no-such-container does not exist in storage account devstoreaccount1 \(create it/,
    );
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
  });
});
