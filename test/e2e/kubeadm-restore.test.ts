import assert from "node:assert/strict";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, assertOneLineError, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import { keysOf, startRestoredMember, waitHealthy } from "../restore/helpers.ts";

describe("kubeadm runbook steps with the built CLI", () => {
  let work: string;
  let etcd: EtcdServer;
  let identity: string;
  let recipient: string;
  let store: string;
  let original: { revision: number; keys: string[] };
  let kube: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-kubeadm-"));
    store = join(work, "backups");
    mkdirSync(store);
    etcd = await startEtcd();
    await fillKeys(etcd, 200, { prefix: "/registry/secrets/default/s-" });
    original = await keysOf(etcd.ctlArgs);
    ({ identity, recipient } = await keygen(work));
    kube = join(work, "etc", "kubernetes");
    mkdirSync(join(kube, "pki", "etcd"), { recursive: true });
    mkdirSync(join(kube, "manifests"));
    writeFileSync(join(kube, "pki", "ca.key"), "KEY\n", { mode: 0o600 });
    writeFileSync(join(kube, "pki", "ca.crt"), "CRT\n", { mode: 0o644 });
    symlinkSync("../ca.crt", join(kube, "pki", "etcd", "ca.crt"));
    writeFileSync(join(kube, "manifests", "kube-apiserver.yaml"), "kind: Pod\n");
    writeFileSync(join(kube, "admin.conf"), "conf\n", { mode: 0o600 });
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  test("save, wipe etcd, restore --data-dir: etcd starts on it with every key and the revision", async () => {
    assertOk(
      await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        store,
        "--cluster",
        "kube",
        "--recipient",
        recipient,
      ]),
    );
    await etcd.destroy();
    const dataDir = join(work, "var-lib-etcd");
    const peerPort = await freePort();
    // The operator runs the restore where the cluster's own etcdutl is on PATH (etcdctl for Debian's 3.4).
    const binDir = dirname(etcd.peer.etcdutl ?? etcd.peer.etcdctl);
    const r = await runCli(
      [
        "restore",
        "latest",
        "--to",
        store,
        "--identity",
        identity,
        "--data-dir",
        dataDir,
        "--name",
        "cp1",
        "--initial-cluster",
        `cp1=http://127.0.0.1:${peerPort}`,
        "--initial-advertise-peer-urls",
        `http://127.0.0.1:${peerPort}`,
        "--initial-cluster-token",
        "restored",
      ],
      { env: { PATH: `${binDir}:${process.env.PATH}` } },
    );
    assertOk(r);
    let bump = 0;
    if (etcd.peer.etcdutl) {
      // etcdutl (3.5.10+, 3.6) bumps the revision and marks it compacted: no warning.
      bump = 1_000_000_000;
      assert.match(
        r.stdout,
        /^restored kube-.*\.snap\.zst\.age into data dir .*var-lib-etcd with etcdutl \(revision bumped by 1000000000, marked compacted\)\n$/,
      );
      assert.doesNotMatch(r.stderr, /warning/);
    } else {
      assert.match(
        r.stdout,
        /^restored kube-.*\.snap\.zst\.age into data dir .*var-lib-etcd with etcdctl \(revision not bumped\)\n$/,
      );
      // Debian's etcdctl 3.4.23 cannot bump: the CLI says so, and why it matters.
      assert.match(
        r.stderr,
        /^etcd-backup: warning: .*etcdctl has no --bump-revision\/--mark-compacted.*watch caches/m,
      );
    }
    assert.equal(lstatSync(dataDir).mode & 0o777, 0o700);
    const member = startRestoredMember({
      name: "cp1",
      dataDir,
      clientPort: await freePort(),
      peerPort,
      peer: etcd.peer,
    });
    try {
      await waitHealthy(member);
      assert.deepEqual(await keysOf(member.ctlArgs), { ...original, revision: original.revision + bump });
    } finally {
      await member.stop();
    }
    const again = await runCli([
      "restore",
      "latest",
      "--to",
      store,
      "--identity",
      identity,
      "--data-dir",
      dataDir,
    ]);
    assertOneLineError(
      again,
      1,
      /--data-dir .*var-lib-etcd is not empty; refusing to restore over a member's data \(move it aside first/,
    );
  });

  test("restore needs exactly one target", async () => {
    assertOneLineError(
      await runCli(["restore", "latest", "--to", store]),
      2,
      /no restore target given.*--data-dir DIR/,
    );
    assertOneLineError(
      await runCli(["restore", "latest", "--to", store, "--to-file", "x", "--data-dir", "y"]),
      2,
      /exclude each other/,
    );
  });

  test("save-config refuses the clear without the long flag, restore-config puts the files back", async () => {
    const plain = await runCli(["save-config", "--path", kube, "--to", store, "--no-encrypt"]);
    assertOneLineError(
      plain,
      2,
      /private keys .* in the clear.*--i-understand-private-keys-are-stored-unencrypted/,
    );
    const saved = await runCli([
      "save-config",
      "--path",
      join(kube, "pki"),
      "--path",
      join(kube, "manifests"),
      "--path",
      join(kube, "admin.conf"),
      "--to",
      store,
      "--cluster",
      "kube",
      "--recipient",
      recipient,
    ]);
    assertOk(saved);
    assert.match(
      saved.stdout,
      /^saved kube-.*\.config\.tar\.zst\.age .*: 4 files, 3 directories, 1 symlinks/,
    );
    const list = JSON.parse((await runCli(["list", "--to", store, "-o", "json"])).stdout) as {
      key: string;
    }[];
    assert.equal(list.length, 2, "the snapshot and the config archive side by side");

    const target = join(work, "restored-root");
    mkdirSync(target);
    const noTarget = await runCli(["restore-config", "latest", "--to", store, "--identity", identity]);
    assertOneLineError(noTarget, 2, /no --target given/);
    assertOk(
      await runCli(["restore-config", "latest", "--to", store, "--identity", identity, "--target", target]),
    );
    const root = join(target, kube);
    assert.equal(lstatSync(join(root, "pki", "ca.key")).mode & 0o777, 0o600);
    assert.equal(lstatSync(join(root, "pki", "ca.crt")).mode & 0o777, 0o644);
    assert.equal(readlinkSync(join(root, "pki", "etcd", "ca.crt")), "../ca.crt");
    assert.equal(readFileSync(join(root, "manifests", "kube-apiserver.yaml"), "utf8"), "kind: Pod\n");

    writeFileSync(join(root, "admin.conf"), "changed\n");
    chmodSync(join(root, "admin.conf"), 0o644);
    const refused = await runCli([
      "restore-config",
      "latest",
      "--to",
      store,
      "--identity",
      identity,
      "--target",
      target,
    ]);
    assertOneLineError(refused, 1, /5 files already exist .*nothing was restored \(pass --force/);
    assert.equal(readFileSync(join(root, "admin.conf"), "utf8"), "changed\n");
    const forced = await runCli([
      "restore-config",
      "latest",
      "--to",
      store,
      "--identity",
      identity,
      "--target",
      target,
      "--force",
    ]);
    assertOk(forced);
    assert.match(forced.stdout, /4 files, 3 directories, 1 symlinks, 5 replaced/);
    assert.equal(readFileSync(join(root, "admin.conf"), "utf8"), "conf\n");
    assert.equal(lstatSync(join(root, "admin.conf")).mode & 0o777, 0o600);
  });
});
