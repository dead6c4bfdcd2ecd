import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { GcsStore } from "../../src/store/gcs.ts";
import { scrape, spawnDaemon, waitFor } from "../daemon/harness.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { freePort } from "../fixtures/ports.ts";
import { quietMetrics } from "../fixtures/quiet-metrics.ts";

/**
 * The daemon with a gs:// destination configured through its YAML file (`to`, and the `gcs:` section: the one
 * configuration path), against a real etcd and fake-gcs-server (a stand-in for the service): it backs up on
 * schedule, verifies each backup with the identity, prunes to keep-last 2, and its metrics match the bucket.
 */
describe("daemon against real etcd and Google Cloud Storage (fake-gcs-server)", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let work: string;
  let gcs: TestGcsServer;
  let etcd: EtcdServer;
  let base: string;
  let daemon: ReturnType<typeof spawnDaemon>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-daemon-gcs-"));
    gcs = await startGcsServer();
    await gcs.createBucket("backups");
    etcd = await startEtcd();
    await fillKeys(etcd, 300);
    const id = generateIdentity();
    const identityFile = join(work, "identity.txt");
    writeFileSync(identityFile, identityFileText(id), { mode: 0o600 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = join(work, "daemon.yaml");
    writeFileSync(
      config,
      [
        `schedule: "*/2 * * * * *"`,
        "cluster: e2e",
        `endpoints: ["${etcd.endpoint}"]`,
        "to: gs://backups/daemon",
        "gcs:",
        `  endpoint: ${gcs.endpoint}`,
        "  chunkSizeMiB: 0.25",
        `recipient: ["${id.recipient}"]`,
        `identity: ["${identityFile}"]`,
        "verify: true",
        "keepLast: 2",
        `metricsAddr: "127.0.0.1:${port}"`,
        "retryBackoff: 500ms",
        "logFormat: json",
        "",
      ].join("\n"),
    );
    daemon = spawnDaemon(["--config", config], {
      GOOGLE_APPLICATION_CREDENTIALS: "",
      STORAGE_EMULATOR_HOST: "",
    });
  });

  after(async () => {
    await daemon?.stop();
    await etcd?.destroy();
    await gcs?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("backs up on schedule to gs://, verifies, prunes to keep-last 2; metrics match the bucket", async () => {
    await waitFor(
      "three successful runs",
      async () => {
        const m = await scrape(base);
        return (m.get('etcd_backup_runs_total{result="success"}') ?? 0) >= 3 ? m : undefined;
      },
      90_000,
    );
    const store = new GcsStore({ bucket: "backups", prefix: "daemon", settings: { endpoint: gcs.endpoint } });
    const { metrics, usable } = await quietMetrics(base, store);
    assert.equal(usable.length, 2, "keep-last 2 leaves two backups");
    assert.ok(usable.every((e) => e.state === "complete" && e.cluster === "e2e" && e.encrypted));
    assert.equal(metrics.get("etcd_backup_backups_kept"), 2);
    assert.equal(metrics.get("etcd_backup_stored_bytes"), usable[0]!.object!.size);
    assert.ok(daemon.lines().filter((l) => l.msg === "verified").length >= 3);
  });
});
