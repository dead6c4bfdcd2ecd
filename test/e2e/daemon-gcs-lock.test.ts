import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateIdentity, identityFileText } from "../../src/age/keys.ts";
import { spawnDaemon, waitFor } from "../daemon/harness.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type GcsRetentionProxy, startGcsRetentionProxy } from "../fixtures/gcs-retention-proxy.ts";
import { startGcsServer, type TestGcsServer } from "../fixtures/gcs-server.ts";
import { fakeGcsPeer, skipReason } from "../fixtures/peers.ts";
import { freePort } from "../fixtures/ports.ts";
import { findSecrets } from "../fixtures/secrets.ts";

const DAY_MS = 86_400_000;
const KEEP_WITHIN_MS = 10_000;

/**
 * The built CLI's daemon writing locked backups to gs:// (fake-gcs-server, a stand-in for the service, behind the
 * loopback STAND-IN proxy of test/fixtures/gcs-retention-proxy.ts that gives the bucket `objectRetention`, which
 * the emulator has not), configured by flags: `--object-lock governance --keep-within 10s`, no
 * `--object-lock-days`. The days default to --keep-within in whole days, rounded up (config/schema.ts
 * objectLockDefaults): one day. Proven against the emulator's own object resources (read from its JSON API,
 * not through our store): each backup and manifest carries retention `Unlocked` until about its creation + 1 day;
 * the daemon's prune, which --keep-within 10s would have delete every backup but the newest after ten seconds,
 * keeps them all and logs what holds each (the emulator itself would delete them: it does not refuse); nothing
 * it printed holds a secret (the identity it verifies with).
 */
describe("daemon: --object-lock governance on gs://, days from --keep-within (fake-gcs-server)", {
  skip: skipReason(fakeGcsPeer(), "fake-gcs-server"),
}, () => {
  let work: string;
  let gcs: TestGcsServer;
  let proxy: GcsRetentionProxy;
  let etcd: EtcdServer;
  let daemon: ReturnType<typeof spawnDaemon>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-daemon-gcs-lock-"));
    gcs = await startGcsServer();
    await gcs.createBucket("locked");
    proxy = await startGcsRetentionProxy(gcs.endpoint, ["locked"]);
    etcd = await startEtcd();
    await fillKeys(etcd, 300);
    const id = generateIdentity();
    const identityFile = join(work, "identity.txt");
    writeFileSync(identityFile, identityFileText(id), { mode: 0o600 });
    const port = await freePort();
    daemon = spawnDaemon(
      [
        ...["--schedule", "*/2 * * * * *", "--cluster", "e2e", "--endpoints", etcd.endpoint],
        ...[
          "--to",
          "gs://locked/daemon",
          "--recipient",
          id.recipient,
          "--identity",
          identityFile,
          "--verify",
        ],
        ...["--object-lock", "governance", "--keep-within", "10s"],
        ...["--metrics-addr", `127.0.0.1:${port}`, "--retry-backoff", "500ms", "--log-format", "json"],
      ],
      {
        ETCD_BACKUP_GCS_ENDPOINT: proxy.endpoint,
        GOOGLE_APPLICATION_CREDENTIALS: "",
        STORAGE_EMULATOR_HOST: "",
      },
    );
  });

  after(async () => {
    await daemon?.stop();
    await etcd?.destroy();
    await proxy?.close();
    await gcs?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("each backup is stored with retention Unlocked for one day; prune keeps the held ones and logs why", async () => {
    const started = Date.now();
    // Runs until at least two backups are past --keep-within and a prune has reported them held.
    const pruneLine = await waitFor(
      "a prune that kept two backups past --keep-within for their lock",
      async () => {
        const lines = daemon.lines().filter((l) => l.msg === "pruned" && Array.isArray(l.held));
        const last = lines.at(-1);
        return last && (last.held as string[]).length >= 2 ? last : undefined;
      },
      120_000,
    );
    assert.ok(Date.now() - started > KEEP_WITHIN_MS, "some backups are past --keep-within");
    await daemon.stop();

    const names = await gcs.objectNames("locked");
    const backups = names.filter((n) => n.endsWith(".snap.zst.age"));
    const lines = daemon.lines();
    const saved = lines.filter((l) => l.msg === "saved").map((l) => String(l.key));
    assert.ok(saved.length >= 3, `${saved.length} runs`);
    // Nothing was deleted: every backup the daemon saved is still there, with its manifest.
    assert.deepEqual(backups, saved.map((k) => `daemon/${k}`).sort(), "the held backups stay");
    for (const key of saved) assert.ok(names.includes(`daemon/${key}.json`), `${key}.json`);
    assert.ok(
      lines.filter((l) => l.msg === "pruned").every((l) => l.pruned === 0),
      "no prune deleted anything",
    );
    assert.ok(lines.filter((l) => l.msg === "verified").length >= saved.length - 1);

    // The emulator's own object resources: retention Unlocked (governance) until creation + 1 day (10s rounded up).
    const retainUntil = new Map<string, string>();
    for (const name of [...backups, ...backups.map((b) => `${b}.json`)]) {
      const res = await fetch(`${gcs.endpoint}/storage/v1/b/locked/o/${encodeURIComponent(name)}`);
      assert.equal(res.status, 200, name);
      const resource = (await res.json()) as {
        timeCreated: string;
        retention?: { mode: string; retainUntilTime: string };
      };
      assert.equal(resource.retention?.mode, "Unlocked", `${name}: ${JSON.stringify(resource)}`);
      const lockedFor = Date.parse(resource.retention!.retainUntilTime) - Date.parse(resource.timeCreated);
      assert.ok(Math.abs(lockedFor - DAY_MS) < 60_000, `${name}: locked for ${lockedFor} ms, want one day`);
      retainUntil.set(name, resource.retention!.retainUntilTime);
    }
    // Only the backups and their manifests were locked by us, not the markers.
    assert.ok(proxy.initiations.length > 2 * saved.length);
    for (const i of proxy.initiations)
      assert.equal(
        i.body.retention !== undefined,
        /\.snap\.zst\.age(?:\.json)?$/.test(i.name),
        `${i.name}: ${JSON.stringify(i.body)}`,
      );

    // The log names each held backup and what holds it, as `prune` does: the older ones, not the newest.
    const held = pruneLine.held as string[];
    const newest = saved.filter((k) => held.every((e) => !e.startsWith(`${k}: `)));
    assert.ok(newest.length >= 1);
    for (const entry of held) {
      const [key, hold] = entry.split(": ") as [string, string];
      assert.ok(saved.includes(key), entry);
      const backupTime = Date.parse(key.replace(/^e2e-/, "").replace(/\.snap\.zst\.age$/, ""));
      assert.ok(
        Date.parse(String(pruneLine.time)) - backupTime > KEEP_WITHIN_MS,
        `${entry}: past --keep-within`,
      );
      assert.equal(hold, `object lock governance until ${retainUntil.get(`daemon/${key}`)!.slice(0, 10)}`);
    }

    // Nothing printed holds a secret (daemon.stop() scanned too), nor do the metrics.
    assert.deepEqual(findSecrets(daemon.output()), []);
  });
});
