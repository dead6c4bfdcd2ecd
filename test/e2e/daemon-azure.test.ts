/**
 * The daemon with an Azure Blob destination (Azurite): scheduled backups, verified, pruned to --keep-last, with
 * the account key read from --azure-account-key-file; its logs, status page and metrics never show the key.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { isUsable, listBackups } from "../../src/catalog/catalog.ts";
import { AzureBlobStore } from "../../src/store/azure-blob.ts";
import { scrape, spawnDaemon, waitFor } from "../daemon/harness.ts";
import { startAzurite, type TestAzurite } from "../fixtures/azurite-server.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import { registerSecret } from "../fixtures/secrets.ts";

describe("daemon against real etcd and Azure Blob (Azurite)", () => {
  let work: string;
  let azurite: TestAzurite;
  let etcd: EtcdServer;
  let base: string;
  let daemon: ReturnType<typeof spawnDaemon>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-daemon-azure-"));
    [azurite, etcd] = await Promise.all([startAzurite(), startEtcd()]);
    await azurite.createContainer("backups");
    await fillKeys(etcd, 300);
    registerSecret(azurite.key, "Azurite's account key");
    const keyFile = join(work, "azure.key");
    writeFileSync(keyFile, `${azurite.key}\n`, { mode: 0o600 });
    const id = generateIdentity();
    const identityFile = join(work, "identity.txt");
    writeFileSync(identityFile, identityFileText(id), { mode: 0o600 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    daemon = spawnDaemon(
      [
        ...["--schedule", "*/2 * * * * *", "--cluster", "e2e", "--endpoints", etcd.endpoint],
        ...["--to", "azblob://backups/daemon", "--azure-endpoint", azurite.endpoint],
        ...["--azure-account-key-file", keyFile],
        ...["--recipient", id.recipient, "--identity", identityFile, "--verify"],
        ...["--keep-last", "2", "--metrics-addr", `127.0.0.1:${port}`, "--log-format", "json"],
      ],
      // Nothing from the environment: the key comes from the file only.
      { AZURE_STORAGE_KEY: "", AZURE_STORAGE_CONNECTION_STRING: "", AZURE_STORAGE_SAS_TOKEN: "" },
    );
  });

  after(async () => {
    const code = await daemon?.stop();
    await etcd?.destroy();
    await azurite?.stop();
    rmSync(work, { recursive: true, force: true });
    assert.equal(code, 0, "the daemon stops cleanly on SIGTERM");
  });

  test("backs up on schedule, verifies, prunes to --keep-last 2; no key in its pages", async () => {
    await waitFor("three successful runs", async () => {
      const m = await scrape(base);
      return (m.get('etcd_backup_runs_total{result="success"}') ?? 0) >= 3 ? m : undefined;
    });
    const store = new AzureBlobStore({
      container: "backups",
      prefix: "daemon",
      settings: { endpoint: azurite.endpoint },
      secrets: { accountKey: azurite.key },
    });
    const usable = await waitFor("prune to have run after the last success", async () => {
      const entries = (await listBackups(store)).filter(isUsable);
      return entries.length === 2 ? entries : undefined;
    });
    assert.ok(usable.every((e) => e.state === "complete" && e.cluster === "e2e" && e.encrypted));
    assert.ok(daemon.lines().filter((l) => l.msg === "verified").length >= 3);
    const page = await (await fetch(`${base}/`)).text();
    assert.match(page, /azblob:\/\/backups\/daemon/);
    for (const text of [page, await (await fetch(`${base}/metrics`)).text(), daemon.output()])
      assert.ok(!text.includes(azurite.key), "the account key is shown");
  });
});
