import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { lstatSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { assertEmptyTarget, restoreToDataDir } from "../../src/restore/data-dir.ts";
import { findRestoreTool, toolErrorLine } from "../../src/restore/etcd-tools.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { freePort } from "../fixtures/ports.ts";
import {
  keysOf,
  type RestoredMember,
  saveTestBackup,
  startRestoredMember,
  type TestBackup,
  waitHealthy,
} from "./helpers.ts";

describe("restore into a data dir, proven by starting etcd on it", () => {
  let work: string;
  let etcd: EtcdServer;
  let backup: TestBackup;
  let original: { revision: number; keys: string[] };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "etcd-backup-data-dir-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 400, { prefix: "/registry/configmaps/default/cm-" });
    await etcd.ctl(["put", "/registry/secrets/kube-system/s1", "secret"]);
    await etcd.ctl(["del", "/registry/configmaps/default/cm-000007"]);
    original = await keysOf(etcd.ctlArgs);
    backup = await saveTestBackup(etcd, join(work, "store-root"));
    // The data dir is wiped: from here on, only the backup holds the keys.
    await etcd.destroy();
  });

  after(async () => {
    await etcd?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  test("one member: every key and the revision come back", async () => {
    const dataDir = join(work, "single", "member.etcd");
    const warnings: string[] = [];
    const peerPort = await freePort();
    const result = await restoreToDataDir({
      ...backup,
      dataDir,
      member: {
        name: "solo",
        initialCluster: `solo=http://127.0.0.1:${peerPort}`,
        initialAdvertisePeerUrls: `http://127.0.0.1:${peerPort}`,
      },
      onWarning: (w) => warnings.push(w),
    });
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700, "data dir is private as etcd makes it");
    // Everything in it too: etcdctl 3.4 writes its .snap file 0644 unless its umask says otherwise.
    const open = (await readdir(dataDir, { recursive: true, withFileTypes: true })).filter(
      (e) => lstatSync(join(e.parentPath, e.name)).mode & 0o077,
    );
    assert.deepEqual(
      open.map((e) => join(e.parentPath, e.name)),
      [],
      "no file or folder of the restored member is open to group or others",
    );
    assert.deepEqual(await readdir(join(work, "single")), ["member.etcd"], "the private work dir is gone");
    if (!result.tool.supportsRevisionBump) {
      assert.equal(result.revisionBump, 0);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /no --bump-revision\/--mark-compacted.*informers and watch caches/);
    }
    const member = startRestoredMember({ name: "solo", dataDir, clientPort: await freePort(), peerPort });
    try {
      await waitHealthy(member);
      const served = await keysOf(member.ctlArgs);
      assert.deepEqual(served.keys, original.keys);
      assert.equal(served.revision, original.revision + result.revisionBump);
    } finally {
      await member.stop();
    }
  });

  test("three members restored with one initial cluster form a healthy cluster serving the keys", async () => {
    const names = ["m1", "m2", "m3"];
    const peers = await Promise.all(names.map(() => freePort()));
    const clients = await Promise.all(names.map(() => freePort()));
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peers[i]}`).join(",");
    const tool = await findRestoreTool();
    for (const [i, name] of names.entries()) {
      await restoreToDataDir({
        ...backup,
        dataDir: join(work, "three", `${name}.etcd`),
        tool,
        member: {
          name,
          initialCluster,
          initialClusterToken: "restored-cluster-1",
          initialAdvertisePeerUrls: `http://127.0.0.1:${peers[i]}`,
        },
      });
    }
    const members: RestoredMember[] = names.map((name, i) =>
      startRestoredMember({
        name,
        dataDir: join(work, "three", `${name}.etcd`),
        clientPort: clients[i]!,
        peerPort: peers[i]!,
      }),
    );
    try {
      await Promise.all(members.map((m) => waitHealthy(m)));
      for (const m of members) {
        const served = await keysOf(m.ctlArgs);
        assert.deepEqual(served.keys, original.keys, `${m.name} serves every key`);
      }
      // A write through one member is seen by the others: they are one cluster, not three.
      execFileSync("/usr/bin/etcdctl", [...members[0]!.ctlArgs, "put", "/after-restore", "x"], {
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      const list = JSON.parse(
        execFileSync("/usr/bin/etcdctl", [...members[2]!.ctlArgs, "member", "list", "-w", "json"], {
          env: { ...process.env, ETCDCTL_API: "3" },
        }).toString(),
      ) as { members: { name: string }[] };
      assert.deepEqual(list.members.map((m) => m.name).sort(), names);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const seen = await keysOf(members[2]!.ctlArgs);
        if (seen.keys.includes("/after-restore")) break;
        assert.ok(Date.now() < deadline, "m3 sees the write made through m1");
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  });

  test("a non-empty data dir is refused, and nothing in it is touched", async () => {
    const dataDir = join(work, "busy");
    await mkdir(dataDir);
    await writeFile(join(dataDir, "keep"), "x");
    await assert.rejects(
      restoreToDataDir({ ...backup, dataDir }),
      /--data-dir .*busy is not empty; refusing/,
    );
    assert.deepEqual(await readdir(dataDir), ["keep"]);
    assert.deepEqual(
      (await readdir(work)).filter((f) => f.startsWith(".etcd-backup-")),
      [],
    );
  });

  test("an empty existing data dir is accepted; a file in its place is refused", async () => {
    const empty = join(work, "empty");
    await mkdir(empty);
    await chmod(empty, 0o755);
    assert.equal(await assertEmptyTarget(empty, "--data-dir"), true);
    assert.equal(await assertEmptyTarget(join(work, "absent"), "--data-dir"), false);
    await writeFile(join(work, "plain-file"), "x");
    await assert.rejects(
      assertEmptyTarget(join(work, "plain-file"), "--data-dir"),
      /exists and is not a directory/,
    );
  });

  test("the tool's failure comes back as one line, and the temp dir is removed", async () => {
    const dataDir = join(work, "bad-cluster", "d");
    await assert.rejects(
      restoreToDataDir({ ...backup, dataDir, member: { name: "x", initialCluster: "y=http://127.0.0.1:1" } }),
      (err: Error) => {
        assert.match(
          err.message,
          /etcdctl snapshot restore failed: couldn't find local name "x" in the initial cluster/,
        );
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      },
    );
    assert.deepEqual(await readdir(join(work, "bad-cluster")), [], "no data dir and no work dir left");
  });

  test("a tool that has --bump-revision gets it with --mark-compacted; no warning", async () => {
    // A stand-in etcdutl: its help lists the flags (as etcdutl 3.5.10+ does), it records its arguments and
    // hands the restore without them to the real etcdctl 3.4.
    const bin = join(work, "bin");
    await mkdir(bin);
    const log = join(work, "etcdutl-args");
    const script = [
      "#!/bin/sh",
      'if [ "$3" = "--help" ]; then echo "      --bump-revision uint"; echo "      --mark-compacted"; exit 0; fi',
      `printf '%s\\n' "$@" > ${log}`,
      'args=""; skip=0',
      'for a in "$@"; do',
      "  if [ $skip = 1 ]; then skip=0; continue; fi",
      '  case "$a" in --bump-revision) skip=1 ;; --mark-compacted) ;; *) args="$args $a" ;; esac',
      "done",
      "ETCDCTL_API=3 exec /usr/bin/etcdctl $args",
    ].join("\n");
    await writeFile(join(bin, "etcdutl"), `${script}\n`, { mode: 0o755 });
    const tool = await findRestoreTool({ pathEnv: bin });
    assert.deepEqual({ kind: tool.kind, bump: tool.supportsRevisionBump }, { kind: "etcdutl", bump: true });
    const warnings: string[] = [];
    const result = await restoreToDataDir({
      ...backup,
      dataDir: join(work, "bumped"),
      tool,
      onWarning: (w) => warnings.push(w),
    });
    assert.equal(result.revisionBump, 1_000_000_000);
    assert.deepEqual(warnings, []);
    const args = readFileSync(log, "utf8").trim().split("\n");
    assert.deepEqual(args.slice(-3), ["--bump-revision", "1000000000", "--mark-compacted"]);
    const none = await restoreToDataDir({
      ...backup,
      dataDir: join(work, "unbumped"),
      tool,
      revisionBump: 0,
    });
    assert.equal(none.revisionBump, 0);
    assert.ok(!readFileSync(log, "utf8").includes("--bump-revision"));
  });

  test("the real etcdctl 3.4 is probed as it is: no revision bump", async () => {
    const tool = await findRestoreTool({ pathEnv: "/usr/bin" });
    assert.deepEqual(
      { kind: tool.kind, path: tool.path, bump: tool.supportsRevisionBump },
      { kind: "etcdctl", path: "/usr/bin/etcdctl", bump: false },
    );
    await assert.rejects(
      findRestoreTool({ pathEnv: join(work, "nowhere") }),
      /neither etcdutl nor etcdctl is installed/,
    );
  });

  test("toolErrorLine picks the Error: line, else a zap error entry, else the last line", () => {
    assert.equal(
      toolErrorLine('{"level":"info","msg":"restoring"}\nError: open x: no such file\n'),
      "open x: no such file",
    );
    assert.equal(
      toolErrorLine(
        '{"level":"info","msg":"a"}\n{"level":"fatal","msg":"failed to restore","error":"boom"}\n',
      ),
      "failed to restore: boom",
    );
    assert.equal(toolErrorLine("first\nlast\n\n"), "last");
  });
});
