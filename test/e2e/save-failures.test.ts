import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { saveBackup } from "../../src/backup/save.ts";
import { EtcdSource } from "../../src/source/etcd.ts";
import type { SnapshotSource } from "../../src/source/source.ts";
import { LocalStore } from "../../src/store/local.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";

function emptyDir(dir: string): void {
  assert.deepEqual(readdirSync(dir), [], `nothing may be left in ${dir}`);
}

describe("mTLS to etcd", () => {
  let work: string;
  let pki: TestPki;
  let other: TestPki;
  let etcd: EtcdServer;
  let out: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-tls-"));
    pki = makePki(work, "ca");
    other = makePki(work, "other");
    etcd = await startEtcd({
      tls: { caCert: pki.caCert, serverCert: pki.serverCert, serverKey: pki.serverKey, clientCertAuth: true },
      clientCert: { cert: pki.clientCert, key: pki.clientKey },
    });
    await fillKeys(etcd, 200);
    out = join(work, "out");
    mkdirSync(out);
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  const base = () => [
    "save",
    "--endpoints",
    etcd.endpoint,
    "--to",
    out,
    "--no-encrypt",
    "--dial-timeout",
    "2s",
  ];

  test("with the CA and a client certificate the backup is taken", async () => {
    assertOk(
      await runCli([
        ...base(),
        "--cluster",
        "flags",
        "--cacert",
        pki.caCert,
        "--cert",
        pki.clientCert,
        "--key",
        pki.clientKey,
      ]),
    );
  });

  test("etcdctl's ETCDCTL_* environment works the same", async () => {
    const r = await runCli(["save", "--to", out, "--no-encrypt", "--cluster", "env"], {
      env: {
        ETCDCTL_ENDPOINTS: etcd.endpoint,
        ETCDCTL_CACERT: pki.caCert,
        ETCDCTL_CERT: pki.clientCert,
        ETCDCTL_KEY: pki.clientKey,
      },
    });
    assertOk(r);
    assert.ok(readdirSync(out).some((f) => f.startsWith("env-")));
  });

  test("a wrong CA fails verification with one line", async () => {
    const r = await runCli([
      ...base(),
      "--cacert",
      other.caCert,
      "--cert",
      pki.clientCert,
      "--key",
      pki.clientKey,
    ]);
    assertOneLineError(r, 1, /certificate/i);
  });

  test("a client certificate from another CA is refused", async () => {
    const r = await runCli([
      ...base(),
      "--cacert",
      pki.caCert,
      "--cert",
      other.clientCert,
      "--key",
      other.clientKey,
    ]);
    assertOneLineError(r, 1, /no etcd endpoint served a snapshot/);
  });

  test("an expired client certificate is refused", async () => {
    const expired = issueCert(pki, "expired-client", { cn: "expired", usage: "client", expired: true });
    const r = await runCli([...base(), "--cacert", pki.caCert, "--cert", expired.cert, "--key", expired.key]);
    assertOneLineError(r, 1, /no etcd endpoint served a snapshot/);
  });

  test("a missing key file names the flag", async () => {
    const r = await runCli([
      ...base(),
      "--cacert",
      pki.caCert,
      "--cert",
      pki.clientCert,
      "--key",
      join(work, "missing.key"),
    ]);
    assertOneLineError(r, 1, /cannot read client key .*missing\.key.*ENOENT.*--key/);
  });

  test("--insecure-skip-tls-verify connects without the CA and warns", async () => {
    const r = await runCli([
      ...base(),
      "--cluster",
      "insecure",
      "--insecure-skip-tls-verify",
      "--cert",
      pki.clientCert,
      "--key",
      pki.clientKey,
    ]);
    assertOk(r);
    assert.match(r.stderr, /warning: --insecure-skip-tls-verify/);
  });
});

describe("failures leave nothing that looks like a backup", () => {
  let work: string;
  let etcd: EtcdServer;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-fail-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 2000, { valueSize: 800 });
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  test("a corrupted sha256 trailer is refused: exit 1, no object, no manifest", async () => {
    const snap = join(work, "snap.db");
    await etcd.ctl(["snapshot", "save", snap]);
    const bytes = readFileSync(snap);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(snap, bytes);
    const dir = join(work, "trailer");
    mkdirSync(dir);
    const r = await runCli(["save", "--from-file", snap, "--to", dir, "--no-encrypt"]);
    assertOneLineError(r, 1, /sha256 trailer does not match/);
    emptyDir(dir);
  });

  test("a snapshot without trailer (a copied db file) is refused", async () => {
    const snap = join(work, "short.db");
    writeFileSync(snap, Buffer.alloc(10));
    const dir = join(work, "short");
    mkdirSync(dir);
    assertOneLineError(
      await runCli(["save", "--from-file", snap, "--to", dir, "--no-encrypt"]),
      1,
      /too short/,
    );
    emptyDir(dir);
  });

  test("disk full while writing: one line, no object left", async (t) => {
    const dir = join(work, "full");
    mkdirSync(dir);
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir]);
    if (mounted.status !== 0) {
      t.skip("cannot mount a small tmpfs here (needs root)");
      return;
    }
    try {
      const r = await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--no-encrypt",
        "--compress",
        "none",
      ]);
      assertOneLineError(r, 1, /ENOSPC|no space/i);
      emptyDir(dir);
    } finally {
      execFileSync("umount", [dir]);
    }
  });

  test("a read-only target directory: one line, nothing written", async (t) => {
    const dir = join(work, "ro");
    mkdirSync(dir);
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir]);
    if (mounted.status !== 0) {
      t.skip("cannot mount a read-only tmpfs here (needs root)");
      return;
    }
    try {
      const r = await runCli(["save", "--endpoints", etcd.endpoint, "--to", dir, "--no-encrypt"]);
      assertOneLineError(r, 1, /EROFS|read-only/i);
      emptyDir(dir);
    } finally {
      execFileSync("umount", [dir]);
    }
  });

  test("etcd stopped mid-stream: the save fails and leaves no object and no manifest", async () => {
    const victim = await startEtcd();
    try {
      // ~30 MB: etcd needs a few hundred milliseconds to send it, so the kill lands mid-stream.
      await fillKeys(victim, 3000, { valueSize: 10_000 });
      const dir = join(work, "midstream");
      mkdirSync(dir);
      let killed = false;
      // The stream is open once etcd's first message has arrived; etcd is killed right then. (Killing it when
      // the first bytes reach the store came too late: compression holds whole frames before writing.)
      const etcd = new EtcdSource({ endpoints: [victim.endpoint], tls: {}, dialTimeoutMs: 2000 });
      const source: SnapshotSource = {
        description: etcd.description,
        async open(signal) {
          const opened = await etcd.open(signal);
          victim.process.kill("SIGKILL");
          killed = true;
          return opened;
        },
      };
      await assert.rejects(
        saveBackup({
          source,
          store: new LocalStore(dir),
          cluster: "mid",
          compression: "zstd",
          encryption: null,
        }),
        /snapshot stream from .* failed|ended with .* bytes still to come|trailer/,
      );
      assert.ok(killed, "etcd was killed during the stream");
      emptyDir(dir);
    } finally {
      await victim.destroy();
    }
  });
});
