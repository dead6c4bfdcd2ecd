import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, assertOneLineError, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";

const ETCDCTL_ENV = { ...process.env, ETCDCTL_API: "3" };

function snapshotStatus(file: string): {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
} {
  return JSON.parse(
    execFileSync("etcdctl", ["snapshot", "status", "-w", "json", file], { env: ETCDCTL_ENV }).toString(),
  );
}

describe("save and restore against a real etcd", () => {
  let etcd: EtcdServer;
  let work: string;
  let identity: string;
  let recipient: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 3000, { prefix: "/registry/configmaps/default/cm-", valueSize: 300 });
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  /** Saves etcd (--endpoints) into a new directory `work/<name>` with `flags`; the save must succeed. */
  async function saveIntoNewDir(name: string, flags: string[]): Promise<string> {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    assertOk(await runCli(["save", "--endpoints", etcd.endpoint, "--to", dir, ...flags]));
    return dir;
  }

  test("save -> list -> restore gives the snapshot etcdctl would have saved, which etcdctl restores", async () => {
    const dir = await saveIntoNewDir("plain", ["--cluster", "e2e", "--recipient", recipient]);
    const files = readdirSync(dir).sort();
    assert.equal(files.length, 2, `object and manifest: ${files.join(", ")}`);
    assert.match(files[0]!, /^e2e-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\.snap\.zst\.age$/);
    assert.equal(files[1], `${files[0]}.json`);
    const manifest = JSON.parse(readFileSync(join(dir, files[1]!), "utf8"));
    assert.equal(manifest.encryption.kind, "age");
    assert.deepEqual(manifest.encryption.recipients, [{ kind: "X25519", publicKey: recipient }]);
    assert.ok(!JSON.stringify(manifest).includes("AGE-SECRET-KEY"), "no secret in the manifest");

    const list = await runCli(["list", "--to", dir, "-o", "json"]);
    assertOk(list);
    const entries = JSON.parse(list.stdout);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].state, "complete");

    const out = join(work, "restored.db");
    assertOk(await runCli(["restore", "latest", "--to", dir, "--identity", identity, "--to-file", out]));
    assert.equal(
      statSync(out).size % 512,
      32,
      "trailer kept: size % 512 == 32 as etcdctl snapshot save writes",
    );
    assert.equal(manifest.sha256, execFileSync("sha256sum", [out]).toString().split(" ")[0]);

    // Same revision as a reference snapshot taken now (nothing was written in between).
    const ref = join(work, "reference.db");
    await etcd.ctl(["snapshot", "save", ref]);
    assert.deepEqual(snapshotStatus(out), snapshotStatus(ref));
    // The manifest recorded, while streaming, what etcdctl snapshot status says of the restored file.
    const st = snapshotStatus(out);
    assert.deepEqual(manifest.etcd, { revision: st.revision, hash: st.hash, totalKey: st.totalKey });

    // The server's own release restores it (etcdutl from 3.5 on, etcdctl on 3.4: etcd 3.6 refuses a data
    // dir that etcdctl 3.4 restored), and the restored member of that release serves the keys.
    const dataDir = join(work, "restored-member");
    execFileSync(
      etcd.peer.etcdutl ?? etcd.peer.etcdctl,
      ["snapshot", "restore", out, "--data-dir", dataDir],
      {
        env: etcd.peer.ctlEnv,
        stdio: "ignore",
      },
    );
    const restoredEtcd = await startEtcd({ dataDir, release: etcd.release });
    try {
      const count = JSON.parse(
        await restoredEtcd.ctl(["get", "/registry/", "--prefix", "--keys-only", "-w", "json"]),
      );
      assert.equal(count.count, 3000);
    } finally {
      await restoredEtcd.destroy();
    }
  });

  test("--compress none --no-encrypt stores the snapshot as etcd sent it", async () => {
    const dir = await saveIntoNewDir("raw", ["--cluster", "raw", "--compress", "none", "--no-encrypt"]);
    const [obj] = readdirSync(dir).filter((f) => f.endsWith(".snap"));
    assert.ok(obj, "a .snap object");
    const ref = join(work, "raw-ref.db");
    await etcd.ctl(["snapshot", "save", ref]);
    assert.deepEqual(snapshotStatus(join(dir, obj)), snapshotStatus(ref));
  });

  test("zstd output is readable by the zstd CLI and age output by the age CLI", async () => {
    const dir = await saveIntoNewDir("interop", [
      "--cluster",
      "io",
      "--recipient",
      recipient,
      "--level",
      "9",
    ]);
    const [obj] = readdirSync(dir).filter((f) => f.endsWith(".age"));
    const zst = join(work, "io.snap.zst");
    execFileSync("age", ["-d", "-i", identity, "-o", zst, join(dir, obj!)]);
    const plain = join(work, "io.snap");
    execFileSync("zstd", ["-q", "-d", zst, "-o", plain]);
    const manifest = JSON.parse(readFileSync(join(dir, `${obj}.json`), "utf8"));
    assert.equal(execFileSync("sha256sum", [plain]).toString().split(" ")[0], manifest.sha256);
    assert.equal(manifest.compression.level, 9);
  });

  test("save refuses to run unencrypted unless told so", async () => {
    const r = await runCli(["save", "--endpoints", etcd.endpoint, "--to", work]);
    assertOneLineError(r, 2, /no age recipient given.*--no-encrypt/);
  });

  test("an unreachable endpoint is named, the next one is used", async () => {
    const dir = join(work, "failover");
    mkdirSync(dir, { recursive: true });
    const r = await runCli([
      "save",
      "--endpoints",
      `127.0.0.1:1,${etcd.endpoint}`,
      "--to",
      dir,
      "--no-encrypt",
      "--dial-timeout",
      "1s",
    ]);
    assertOk(r);
    const bad = await runCli([
      "save",
      "--endpoints",
      "127.0.0.1:1,127.0.0.1:2",
      "--to",
      dir,
      "--no-encrypt",
      "--dial-timeout",
      "1s",
    ]);
    assertOneLineError(bad, 1, /127\.0\.0\.1:1: connect ECONNREFUSED.*127\.0\.0\.1:2: connect ECONNREFUSED/);
  });

  test("a missing target directory is a clear error and nothing is written", async () => {
    const r = await runCli([
      "save",
      "--endpoints",
      etcd.endpoint,
      "--to",
      join(work, "nope"),
      "--no-encrypt",
    ]);
    assertOneLineError(r, 1, /directory .*nope does not exist.*create it/);
  });

  test("restore refuses a truncated or corrupted object and leaves no output file", async () => {
    const dir = await saveIntoNewDir("corrupt", ["--cluster", "c", "--recipient", recipient]);
    const [obj] = readdirSync(dir).filter((f) => f.endsWith(".age"));
    const path = join(dir, obj!);
    const original = readFileSync(path);

    // a flipped byte in the middle of the payload
    const flipped = Buffer.from(original);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
    writeFileSync(path, flipped);
    const out = join(work, "corrupt-out.db");
    let r = await runCli(["restore", obj!, "--to", dir, "--identity", identity, "--to-file", out]);
    assertOneLineError(r, 1, /failed authentication|modified|corrupt/);
    assert.deepEqual(
      readdirSync(work).filter((f) => f.includes("corrupt-out")),
      [],
    );

    // truncated
    writeFileSync(path, original.subarray(0, original.length - 100));
    r = await runCli(["restore", obj!, "--to", dir, "--identity", identity, "--to-file", out]);
    assertOneLineError(r, 1, /truncated|corrupt|modified/);
    assert.deepEqual(
      readdirSync(work).filter((f) => f.includes("corrupt-out")),
      [],
    );
  });
});
