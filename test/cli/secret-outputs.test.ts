import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertNoSecretsInDir, assertOk, registerSecret, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";

/*
 * A real etcd with authentication on, a passphrase-encrypted backup, and every command of the backup's life
 * (save, list, verify, restore, prune) with the password and the passphrase in play: no output and no file
 * written holds either (runCli scans stdout and stderr; the store is scanned at the end).
 */

const ROOT_PASSWORD = "Etcd-Root-Pw-5d8Kq2";
const PASSPHRASE = "passphrase-for-tests-Zr7Lm4Wq";

describe("secrets through a backup's life against a real etcd with authentication", () => {
  let etcd: EtcdServer;
  let work: string;
  let store: string;
  let passFile: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "secret-outputs-"));
    store = join(work, "store");
    mkdirSync(store);
    passFile = join(work, "pass.txt");
    writeFileSync(passFile, `${PASSPHRASE}\n`);
    registerSecret(ROOT_PASSWORD, "the etcd root password");
    registerSecret(PASSPHRASE, "the backup passphrase");
    etcd = await startEtcd();
    await fillKeys(etcd, 200, { prefix: "/registry/configmaps/default/cm-", valueSize: 100 });
    await etcd.ctl(["user", "add", "root", "--new-user-password", ROOT_PASSWORD]);
    await etcd.ctl(["auth", "enable"]);
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  const save = (user: string, extra: string[] = []) =>
    runCli([
      "save",
      "--endpoints",
      etcd.endpoint,
      "--user",
      user,
      "--passphrase-file",
      passFile,
      "--to",
      store,
      "--cluster",
      "auth",
      ...extra,
    ]);

  test("a wrong password: one line, neither password printed", async () => {
    const r = await save("root:Wrong-Pw-9f2Lx7");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!r.stderr.includes("Wrong-Pw"), r.stderr);
  });

  test("save, list, verify, restore, prune with the password and the passphrase: nothing printed or written holds them", async () => {
    assertOk(await save(`root:${ROOT_PASSWORD}`));
    assertOk(
      await runCli(
        [
          "save",
          "--endpoints",
          etcd.endpoint,
          "--to",
          store,
          "--cluster",
          "auth",
          "--passphrase-file",
          passFile,
        ],
        {
          env: { ETCDCTL_USER: "root", ETCDCTL_PASSWORD: ROOT_PASSWORD },
        },
      ),
    );
    const list = await runCli(["list", "--to", store, "-o", "json"]);
    assertOk(list);
    const names = (JSON.parse(list.stdout) as { name: string }[]).map((e) => e.name);
    assert.equal(names.length, 2);
    assertOk(await runCli(["verify", names[0]!, "--to", store, "--passphrase-file", passFile]));
    const out = join(work, "restored.db");
    assertOk(
      await runCli(["restore", names[0]!, "--to", store, "--to-file", out, "--passphrase-file", passFile]),
    );
    assertOk(await runCli(["prune", "--to", store, "--keep-last", "1", "--cluster", "auth"]));
    assert.equal(readdirSync(store).length, 2, "one backup and its manifest are left");
    assertNoSecretsInDir(store);
    assertNoSecretsInDir(work, (path) => path === out);
  });
});
