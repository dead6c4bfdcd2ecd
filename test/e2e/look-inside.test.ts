import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";

describe("status, verify, inspect, get and diff on stored backups", () => {
  let etcd: EtcdServer;
  let work: string;
  let dir: string;
  let identity: string;
  let first: string;
  let second: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-look-"));
    dir = join(work, "backups");
    mkdirSync(dir);
    etcd = await startEtcd();
    await fillKeys(etcd, 500, { prefix: "/registry/configmaps/default/cm-", valueSize: 100 });
    await etcd.ctl([
      "put",
      "/registry/namespaces/team-a",
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } }),
    ]);
    const made = await keygen(work);
    identity = made.identity;
    const recipient = made.recipient;
    assertOk(
      await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--cluster",
        "a",
        "--recipient",
        recipient,
      ]),
    );
    first = readdirSync(dir).find((f) => f.endsWith(".age"))!;
    await new Promise((r) => setTimeout(r, 1100)); // names have whole seconds
    await etcd.ctl(["del", "/registry/configmaps/default/cm-000001"]);
    await etcd.ctl(["put", "/registry/secrets/default/new", "x"]);
    assertOk(
      await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--cluster",
        "a",
        "--recipient",
        recipient,
      ]),
    );
    second = readdirSync(dir).filter((f) => f.endsWith(".age") && f !== first)[0]!;
  });

  after(async () => {
    await etcd?.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  test("status of a stored backup equals etcdctl's on the restored file", async () => {
    const out = join(work, "latest.db");
    assertOk(await runCli(["restore", "latest", "--to", dir, "-i", identity, "--to-file", out]));
    // Compared with the status tool of the release the server runs (etcdutl 3.6 by default).
    const dialect = ["--etcd-version", etcd.release];
    const ours = await runCli(["status", "latest", "--to", dir, "-i", identity, "-w", "json", ...dialect]);
    assertOk(ours);
    const tool = etcd.peer.etcdutl ?? etcd.peer.etcdctl;
    const theirs = execFileSync(tool, ["snapshot", "status", "-w", "json", out], {
      env: etcd.peer.ctlEnv,
    }).toString();
    assert.deepEqual(JSON.parse(ours.stdout), JSON.parse(theirs));
    const file = await runCli(["status", out, "-w", "json", ...dialect]);
    assert.equal(file.stdout.trim(), theirs.trim());
  });

  test("an encrypted backup without identity is a one-line error", async () => {
    const r = await runCli(["status", "latest", "--to", dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^etcd-backup: backup .* is encrypted \(pass --identity/);
  });

  test("verify passes on a good backup and names each failure on a damaged one", async () => {
    const good = await runCli(["verify", first, "--to", dir, "-i", identity]);
    assertOk(good);
    assert.match(good.stdout, /ok\s+sha256 trailer/);
    assert.match(good.stdout, /ok\s+manifest sha256/);
    assert.match(good.stdout, /ok\s+bbolt structure/);

    // A copy whose stored bytes are fine for age (re-encrypted) but whose snapshot is damaged: decrypt,
    // flip a byte inside a page, store it plain under a name of its own with the original manifest.
    const plain = join(work, "plain.db");
    assertOk(await runCli(["restore", first, "--to", dir, "-i", identity, "--to-file", plain]));
    const bytes = readFileSync(plain);
    bytes[4096 * 2 + 100]! ^= 0xff;
    const damaged = first.replace(/\.snap\.zst\.age$/, ".snap").replace(/^a-/, "damaged-");
    writeFileSync(join(dir, damaged), bytes);
    const manifest = JSON.parse(readFileSync(join(dir, `${first}.json`), "utf8"));
    manifest.cluster = "damaged";
    manifest.compression = { kind: "none" };
    manifest.encryption = { kind: "none", recipients: [] };
    writeFileSync(join(dir, `${damaged}.json`), JSON.stringify(manifest));
    const bad = await runCli(["verify", damaged, "--to", dir]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /FAIL\s+sha256 trailer: sha256 trailer mismatch/);
    assert.match(bad.stdout, /FAIL\s+manifest sha256/);
    assert.match(bad.stdout, /verification FAILED/);
  });

  test("verify --test-restore starts etcd on the backup", async () => {
    // etcd and its restore tool are found on PATH: the server's release first.
    const r = await runCli(["verify", first, "--to", dir, "-i", identity, "--test-restore"], {
      env: { PATH: `${dirname(etcd.peer.etcd)}:${process.env.PATH}` },
    });
    assertOk(r);
    assert.match(r.stdout, /test restore passed/);
  });

  test("inspect counts the live objects per resource", async () => {
    const r = await runCli(["inspect", second, "--to", dir, "-i", identity, "-o", "json"]);
    assertOk(r);
    const text = r.stdout;
    assert.match(text, /configmaps/);
    const result = JSON.parse(text);
    const json = JSON.stringify(result);
    assert.ok(
      json.includes("499") || json.includes('"count":499'),
      "499 configmaps are live after one delete",
    );
  });

  test("get returns one object; diff shows what changed", async () => {
    const ns = await runCli([
      "get",
      second,
      "/registry/namespaces/team-a",
      "--to",
      dir,
      "-i",
      identity,
      "-o",
      "json",
    ]);
    assertOk(ns);
    assert.equal(JSON.parse(ns.stdout).metadata.name, "team-a");
    const missing = await runCli(["get", second, "/registry/nope", "--to", dir, "-i", identity]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /is not in the snapshot/);
    const d = await runCli(["diff", first, second, "--to", dir, "-i", identity, "-o", "json"]);
    assertOk(d);
    const diff = JSON.stringify(JSON.parse(d.stdout));
    assert.ok(diff.includes("/registry/configmaps/default/cm-000001"), diff.slice(0, 500));
    assert.ok(diff.includes("/registry/secrets/default/new"));
  });
});
