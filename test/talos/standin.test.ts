/** TalosSource and restoreToTalosNode against the stand-in Talos API (see test/fixtures/talos-standin.ts). */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { after, before, describe, test } from "node:test";
import {
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  parseIdentities,
  parseRecipient,
} from "../../src/age/index.ts";
import { saveBackup } from "../../src/backup/save.ts";
import { listBackups } from "../../src/catalog/catalog.ts";
import { describeError, Hinted } from "../../src/errors.ts";
import { restoreToTalosNode } from "../../src/restore/talos.ts";
import { TalosSource } from "../../src/source/talos.ts";
import { LocalStore } from "../../src/store/local.ts";
import { parseTalosconfig, type TalosContext } from "../../src/talos/config.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { freePort } from "../fixtures/ports.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";

let dir: string;
let pki: TestPki;
let etcd: EtcdServer;
let talos: TalosStandIn;
const certs: Record<string, { cert: string; key: string }> = {};

function contextFor(role: string): TalosContext {
  const c = certs[role]!;
  return parseTalosconfig(
    talosconfigYaml({ context: "lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...c }),
    "test",
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "talos-standin-test-"));
  pki = makePki(dir);
  for (const role of ["os:etcd:backup", "os:admin", "os:reader"]) {
    certs[role] = issueCert(pki, role.replaceAll(":", "-"), { cn: "t", usage: "client", org: role });
  }
  certs.none = issueCert(pki, "none", { cn: "t", usage: "client" });
  etcd = await startEtcd();
  await fillKeys(etcd, 300);
  talos = await startTalosStandIn({
    caCert: pki.caCert,
    serverCert: pki.serverCert,
    serverKey: pki.serverKey,
    etcd,
  });
});
after(async () => {
  await talos?.stop();
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe("TalosSource", () => {
  test("streams exactly the snapshot the node served, addressing the node with `node` metadata", async () => {
    const ctx = contextFor("os:etcd:backup");
    const source = new TalosSource({ context: ctx, endpoints: [talos.endpoint], nodes: ["10.5.0.2"] });
    const snap = await source.open();
    const bytes = await buffer(snap.stream);
    const served = talos.served.at(-1)!;
    assert.equal(bytes.length, served.size);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), served.sha256);
    assert.equal(bytes.length % 512, 32, "etcd's sha256 trailer is kept");
    assert.deepEqual(snap.origin, { kind: "talos", endpoint: talos.endpoint, node: "10.5.0.2" });
    const call = talos.calls.at(-1)!;
    assert.equal(call.method, "EtcdSnapshot");
    assert.equal(call.node, "10.5.0.2");
    assert.equal(call.nodes, undefined);
  });

  test("without nodes no metadata is sent: the endpoint's node answers", async () => {
    const source = new TalosSource({
      context: contextFor("os:admin"),
      endpoints: [talos.endpoint],
      nodes: [],
    });
    await buffer((await source.open()).stream);
    assert.equal(talos.calls.at(-1)!.node, undefined);
  });

  test("an abort after the call started but before its first byte fails open() with the reason, nothing thrown", async () => {
    talos.firstByteDelayMs = 3000;
    try {
      const source = new TalosSource({
        context: contextFor("os:etcd:backup"),
        endpoints: [talos.endpoint],
        nodes: [],
      });
      const controller = new AbortController();
      const calls = talos.calls.length;
      setTimeout(() => controller.abort(new Error("stopped by SIGTERM")), 700);
      await assert.rejects(source.open(controller.signal), /stopped by SIGTERM/);
      assert.equal(talos.calls.at(-1)?.method, "EtcdSnapshot");
      assert.ok(talos.calls.length > calls, "the call had started");
    } finally {
      talos.firstByteDelayMs = 0;
    }
  });

  test("an unreachable endpoint is skipped for the next one", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const source = new TalosSource({
      context: contextFor("os:etcd:backup"),
      endpoints: [dead, talos.endpoint],
      nodes: [],
    });
    const snap = await source.open();
    assert.equal(snap.origin.endpoint, talos.endpoint);
    await buffer(snap.stream);
  });

  test("all endpoints unreachable: one line naming each", async () => {
    const a = `127.0.0.1:${await freePort()}`;
    const source = new TalosSource({ context: contextFor("os:etcd:backup"), endpoints: [a], nodes: [] });
    await assert.rejects(source.open(), (err: Error) => {
      assert.ok(err instanceof Hinted);
      assert.match(describeError(err), new RegExp(`no Talos endpoint answered \\(${a}: .*ECONNREFUSED`));
      return true;
    });
  });

  test("a certificate without an allowed role is refused with the roles it would need", async () => {
    for (const role of ["os:reader", "none"]) {
      const source = new TalosSource({ context: contextFor(role), endpoints: [talos.endpoint], nodes: [] });
      await assert.rejects(source.open(), (err: Error) => {
        const line = describeError(err);
        assert.match(line, /the Talos API refused EtcdSnapshot: not authorized/);
        assert.match(line, /needs role os:admin or os:operator or os:etcd:backup/);
        assert.match(line, role === "none" ? /certificate has none/ : /certificate has os:reader/);
        return true;
      });
      assert.equal(talos.calls.at(-1)!.allowed, false);
    }
  });
});

describe("restoreToTalosNode", () => {
  let store: LocalStore;
  const key = generateIdentity();
  const identity = { decryptStream: () => createDecryptStream(parseIdentities(key.identity)) };
  before(() => {
    mkdirSync(join(dir, "store"));
    store = new LocalStore(join(dir, "store"));
  });

  async function backup() {
    const source = new TalosSource({
      context: contextFor("os:etcd:backup"),
      endpoints: [talos.endpoint],
      nodes: [],
    });
    await saveBackup({
      source,
      store,
      cluster: "lab",
      compression: "zstd",
      encryption: { createStage: () => createEncryptStream([parseRecipient(key.recipient)]), recipients: [] },
      now: () => new Date(Date.now() + talos.served.length * 1000),
    });
    const entry = (await listBackups(store))[0]!;
    return { entry, served: talos.served.at(-1)! };
  }

  test("refuses while etcd runs, before reading the backup, and says what to check", async () => {
    const { entry } = await backup();
    talos.etcdState = "Running";
    const uploads = talos.uploads.length;
    await assert.rejects(
      restoreToTalosNode({
        context: contextFor("os:admin"),
        endpoints: [talos.endpoint],
        store,
        entry,
        node: "10.5.0.2",
        decrypt: () => identity.decryptStream(),
      }),
      (err: Error) => {
        assert.match(
          describeError(err),
          /etcd on node 10\.5\.0\.2 is Running .*not Preparing: it cannot be recovered now \(etcd still runs there: check/,
        );
        return true;
      },
    );
    assert.equal(talos.uploads.length, uploads);
    assert.equal(talos.calls.at(-1)!.method, "ServiceList");
  });

  test("uploads exactly the checked snapshot, then Bootstrap with recover_etcd", async () => {
    const { entry, served } = await backup();
    talos.etcdState = "Preparing";
    const result = await restoreToTalosNode({
      context: contextFor("os:admin"),
      endpoints: [talos.endpoint],
      store,
      entry,
      node: "10.5.0.3",
      decrypt: () => identity.decryptStream(),
    });
    const upload = talos.uploads.at(-1)!;
    assert.equal(upload.sha256, served.sha256);
    assert.equal(upload.node, "10.5.0.3");
    assert.equal(result.uploaded, served.size);
    assert.equal(result.sha256, served.sha256);
    assert.deepEqual(talos.bootstraps.at(-1), {
      node: "10.5.0.3",
      recoverEtcd: true,
      recoverSkipHashCheck: false,
    });
    assert.deepEqual(
      talos.calls.slice(-3).map((c) => c.method),
      ["ServiceList", "EtcdRecover", "Bootstrap"],
    );
  });

  test("--dry-run reads and checks everything but neither uploads nor bootstraps", async () => {
    const { entry, served } = await backup();
    talos.etcdState = "Preparing";
    const before = { uploads: talos.uploads.length, boots: talos.bootstraps.length };
    const result = await restoreToTalosNode({
      context: contextFor("os:admin"),
      endpoints: [talos.endpoint],
      store,
      entry,
      node: "10.5.0.3",
      decrypt: () => identity.decryptStream(),
      dryRun: true,
    });
    assert.equal(result.sha256, served.sha256);
    assert.equal(result.uploaded, 0);
    assert.deepEqual({ uploads: talos.uploads.length, boots: talos.bootstraps.length }, before);
  });

  test("a damaged backup is never acknowledged and Bootstrap is not called", async () => {
    const { entry } = await backup();
    talos.etcdState = "Preparing";
    // A plain, uncompressed copy of a snapshot with one byte flipped in the middle: only the trailer check sees it.
    const snap = await buffer(
      (
        await new TalosSource({
          context: contextFor("os:admin"),
          endpoints: [talos.endpoint],
          nodes: [],
        }).open()
      ).stream,
    );
    snap[Math.floor(snap.length / 2)]! ^= 0xff;
    const key = entry.key.replace(/\.snap\.zst\.age$/, ".snap").replace(/T(\d\d):/, "T23:");
    writeFileSync(join(dir, "store", key), snap);
    const damaged = (await listBackups(store)).find((e) => e.key === key)!;
    const before = { uploads: talos.uploads.length, boots: talos.bootstraps.length };
    await assert.rejects(
      restoreToTalosNode({
        context: contextFor("os:admin"),
        endpoints: [talos.endpoint],
        store,
        entry: damaged,
        node: "10.5.0.3",
      }),
      /upload snapshot to node 10\.5\.0\.3.*|trailer/,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual({ uploads: talos.uploads.length, boots: talos.bootstraps.length }, before);
    assert.ok(talos.abortedUploads > 0);
  });

  test("an etcd:backup certificate cannot recover: refused before any call", async () => {
    const { entry } = await backup();
    talos.etcdState = "Preparing";
    const calls = talos.calls.length;
    await assert.rejects(
      restoreToTalosNode({
        context: contextFor("os:etcd:backup"),
        endpoints: [talos.endpoint],
        store,
        entry,
        node: "n1",
        decrypt: () => identity.decryptStream(),
      }),
      (err: Error) => {
        assert.equal(
          describeError(err),
          "recovering etcd through the Talos API needs role os:admin; the talosconfig certificate has os:etcd:backup (use the cluster's admin talosconfig (--talosconfig, --context))",
        );
        return true;
      },
    );
    assert.equal(talos.calls.length, calls);
  });
});
