/**
 * restore --revision N --talos-node: the replayed state reaches a Talos node through EtcdRecover and
 * Bootstrap(recover_etcd), against the stand-in Talos API (test/fixtures/talos-standin.ts; Talos itself cannot
 * run here). The log itself reads etcd's gRPC endpoint: Talos' apid has no watch.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LocalStore } from "../../src/store/local.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { EtcdKv } from "../fixtures/etcd-kv.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";
import { startLog, waitForReach } from "../point-in-time/harness.ts";
import { currentRevision } from "../point-in-time/workload.ts";
import { compareDumps, etcdDump, snapshotTruth } from "../snapshot/differential.ts";

describe("point-in-time restore to a Talos node", () => {
  let dir: string;
  let pki: TestPki;
  let etcd: EtcdServer;
  let talos: TalosStandIn;
  let talosconfig: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "etcd-backup-pitr-talos-"));
    pki = makePki(dir);
    etcd = await startEtcd();
    talos = await startTalosStandIn({
      caCert: pki.caCert,
      serverCert: pki.serverCert,
      serverKey: pki.serverKey,
      etcd,
    });
    talosconfig = join(dir, "admin.talosconfig");
    const admin = issueCert(pki, "admin", { cn: "a", usage: "client", org: "os:admin" });
    writeFileSync(
      talosconfig,
      talosconfigYaml({ context: "lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...admin }),
    );
  });

  after(async () => {
    await talos?.stop();
    await etcd?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the node receives the state at revision N and is bootstrapped with recover_etcd", async () => {
    const seed = testSeed(Date.now() % 1_000_000);
    const rng = new SeededRandom(seed);
    const dest = join(dir, "store");
    mkdirSync(dest);
    const kv = new EtcdKv(etcd.endpoint);
    const env = { HOME: "/nonexistent", TALOSCONFIG: "" };
    try {
      for (let i = 0; i < 20; i++) await kv.txn([{ key: `/t/${rng.int(0, 9)}`, value: rng.bytes(100) }]);
      assertOk(await runCli(["save", "--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt"], { env }));
      const log = startLog(
        ["--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt", "--segment-interval", "500ms"],
        env,
      );
      let target = 0;
      try {
        for (let i = 0; i < 60; i++) {
          await kv.txn([{ key: `/t/${rng.int(0, 9)}`, value: rng.bytes(100) }]);
          if (i === 40) target = await currentRevision(kv);
          if (i % 7 === 0) await kv.delete(`/t/${rng.int(0, 9)}`);
        }
        await waitForReach(new LocalStore(dest), "etcd", await currentRevision(kv), log);
      } finally {
        assert.equal(await log.stop(), 0, log.stderr());
      }
      talos.etcdState = "Preparing";
      const r = await runCli(
        [
          "restore",
          "--revision",
          String(target),
          "--to",
          dest,
          "--talosconfig",
          talosconfig,
          "--talos-node",
          "10.5.0.3",
        ],
        { env },
      );
      assertOk(r);
      assert.match(
        r.stdout,
        /^recovered etcd on node 10\.5\.0\.3 from point-.*bootstrapped with recover_etcd/,
      );
      assert.deepEqual(talos.bootstraps.at(-1), {
        node: "10.5.0.3",
        recoverEtcd: true,
        recoverSkipHashCheck: false,
      });
      const uploaded = join(dir, "uploaded.db");
      writeFileSync(uploaded, talos.uploads.at(-1)!.bytes);
      const diff = compareDumps(await etcdDump(etcd, { rev: target }), await snapshotTruth(uploaded));
      assert.deepEqual(diff.lines, [], `seed ${seed}`);
    } finally {
      kv.close();
    }
  });
});
