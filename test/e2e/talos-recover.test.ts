/**
 * Talos save and recovery through the built CLI against the stand-in Talos API (test/fixtures/talos-standin.ts):
 * flags instead of talos-backup's environment, recovery with EtcdRecover + Bootstrap, and the failures that
 * must each be one clear line with exit code 1.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { freePort } from "../fixtures/ports.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";
import { issueExpiredClientCert } from "../talos/expired-cert.ts";

let dir: string;
let store: string;
let pki: TestPki;
let etcd: EtcdServer;
let talos: TalosStandIn;
const configs: Record<string, string> = {};
let identity: string;

const env = { HOME: "/nonexistent", TALOSCONFIG: "", ETCD_BACKUP_TO: "", BUCKET: "", CLUSTER_NAME: "" };
const cli = (args: string[]) => runCli(args, { env });

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0]!;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "talos-recover-e2e-"));
  store = join(dir, "store");
  mkdirSync(store);
  pki = makePki(dir);
  etcd = await startEtcd();
  await fillKeys(etcd, 400);
  talos = await startTalosStandIn({
    caCert: pki.caCert,
    serverCert: pki.serverCert,
    serverKey: pki.serverKey,
    etcd,
  });
  const certs = {
    backup: issueCert(pki, "backup", { cn: "b", usage: "client", org: "os:etcd:backup" }),
    admin: issueCert(pki, "admin", { cn: "a", usage: "client", org: "os:admin" }),
    reader: issueCert(pki, "reader", { cn: "r", usage: "client", org: "os:reader" }),
    expired: issueExpiredClientCert(pki, "expired", "os:admin"),
  };
  for (const [name, c] of Object.entries(certs)) {
    configs[name] = join(dir, `${name}.talosconfig`);
    writeFileSync(
      configs[name],
      talosconfigYaml({ context: "lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...c }),
    );
  }
  identity = join(dir, "key.txt");
  const res = await cli(["keygen", "-o", identity]);
  assert.equal(res.code, 0, res.stderr);
});

after(async () => {
  await talos?.stop();
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function save(): Promise<string> {
  const { readFileSync } = await import("node:fs");
  const recipient = /age1[0-9a-z]+/.exec(readFileSync(identity, "utf8"))![0];
  const res = await cli([
    "save",
    "--talosconfig",
    configs.backup!,
    "-n",
    "10.5.0.2",
    "--to",
    store,
    "--recipient",
    recipient,
  ]);
  assert.equal(res.code, 0, res.stderr);
  const key = /^saved (\S+) to /.exec(res.stdout)?.[1] ?? "";
  assert.match(key, /^lab-\S+Z\.snap\.zst\.age$/, "cluster from the context, our default compression");
  assert.equal(talos.calls.at(-1)!.node, "10.5.0.2");
  return key;
}

describe("Talos through the built CLI", () => {
  test("restore --talos-node uploads exactly the checked snapshot, then Bootstrap(recover_etcd)", async () => {
    const key = await save();
    const served = talos.served.at(-1)!;
    talos.etcdState = "Preparing";
    const res = await cli([
      "restore",
      key,
      "--to",
      store,
      "-i",
      identity,
      "--talosconfig",
      configs.admin!,
      "--talos-node",
      "10.5.0.3",
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^recovered etcd on node 10\.5\.0\.3 from lab-.*bootstrapped with recover_etcd/);
    const upload = talos.uploads.at(-1)!;
    assert.equal(upload.sha256, served.sha256);
    assert.equal(upload.node, "10.5.0.3");
    assert.deepEqual(talos.bootstraps.at(-1), {
      node: "10.5.0.3",
      recoverEtcd: true,
      recoverSkipHashCheck: false,
    });
  });

  test("--dry-run checks node and backup and sends nothing; --skip-hash-check reaches Bootstrap", async () => {
    const key = await save();
    talos.etcdState = "Preparing";
    const uploads = talos.uploads.length;
    const dry = await cli([
      "restore",
      key,
      "--to",
      store,
      "-i",
      identity,
      "--talosconfig",
      configs.admin!,
      "--talos-node",
      "n1",
      "--dry-run",
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^dry run: etcd on node n1 is Preparing .*nothing was uploaded/);
    assert.equal(talos.uploads.length, uploads);
    const skip = await cli([
      "restore",
      key,
      "--to",
      store,
      "-i",
      identity,
      "--talosconfig",
      configs.admin!,
      "--talos-node",
      "n1",
      "--skip-hash-check",
    ]);
    assert.equal(skip.code, 0, skip.stderr);
    assert.equal(talos.bootstraps.at(-1)!.recoverSkipHashCheck, true);
  });

  test("node not ready for recovery: one line, exit 1, nothing uploaded", async () => {
    const key = await save();
    talos.etcdState = "Running";
    const uploads = talos.uploads.length;
    const res = await cli([
      "restore",
      key,
      "--to",
      store,
      "-i",
      identity,
      "--talosconfig",
      configs.admin!,
      "--talos-node",
      "10.5.0.3",
    ]);
    assert.equal(res.code, 1);
    assert.match(
      oneLine(res.stderr),
      /^etcd-backup: etcd on node 10\.5\.0\.3 is Running .*cannot be recovered now \(etcd still runs there/,
    );
    assert.equal(talos.uploads.length, uploads);
  });

  test("wrong role: one line naming the roles, exit 1", async () => {
    const res = await cli(["save", "--talosconfig", configs.reader!, "--to", store, "--no-encrypt"]);
    assert.equal(res.code, 1);
    assert.equal(
      oneLine(res.stderr),
      "etcd-backup: the Talos API refused EtcdSnapshot: not authorized (EtcdSnapshot needs role os:admin or os:operator or os:etcd:backup; the talosconfig certificate has os:reader)",
    );
  });

  test("expired certificate: one line, exit 1, no call made", async () => {
    const calls = talos.calls.length;
    const res = await cli(["save", "--talosconfig", configs.expired!, "--to", store, "--no-encrypt"]);
    assert.equal(res.code, 1);
    assert.match(
      oneLine(res.stderr),
      /^etcd-backup: the talosconfig client certificate expired on 2020-02-01T00:00:00\.000Z \(get a fresh talosconfig/,
    );
    assert.equal(talos.calls.length, calls);
  });

  test("unreachable endpoint: one line, exit 1; a second endpoint is used when the first is down", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const res = await cli([
      "save",
      "--talosconfig",
      configs.backup!,
      "-e",
      dead,
      "--to",
      store,
      "--no-encrypt",
    ]);
    assert.equal(res.code, 1);
    assert.match(
      oneLine(res.stderr),
      new RegExp(`^etcd-backup: no Talos endpoint answered \\(${dead}: .*ECONNREFUSED.*\\) \\(check -e`),
    );
    const ok = await cli([
      "save",
      "--talosconfig",
      configs.backup!,
      "-e",
      `${dead},${talos.endpoint}`,
      "--to",
      store,
      "--no-encrypt",
      "--cluster",
      "failover",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
