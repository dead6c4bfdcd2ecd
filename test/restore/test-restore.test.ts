import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { resolveBackup } from "../../src/catalog/catalog.ts";
import { formatStamp } from "../../src/catalog/names.ts";
import { processCommandLine } from "../../src/restore/process-identity.ts";
import { renderTestRestore, testRestore } from "../../src/restore/test-restore.ts";
import { restoreToFile } from "../../src/restore/to-file.ts";
import { LocalStore } from "../../src/store/local.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { keysOf, saveTestBackup, type TestBackup } from "./helpers.ts";

const run = promisify(execFile);

async function leftovers(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((f) => f.startsWith(".etcd-backup-work-test-restore-"));
}

describe("testRestore starts the real etcd on a restored copy", () => {
  let work: string;
  let etcd: EtcdServer;
  let backup: TestBackup;
  let original: { revision: number; keys: string[] };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "etcd-backup-testrestore-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 300, { prefix: "/registry/pods/default/p-" });
    await etcd.ctl(["del", "/registry/pods/default/p-000001"]);
    original = await keysOf(etcd.ctlArgs);
    backup = await saveTestBackup(etcd, join(work, "store"));
  });

  after(async () => {
    await etcd?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  test("a good backup passes with the source's revision and key count", async () => {
    const before = await leftovers();
    const report = await testRestore(backup);
    assert.deepEqual(report.problems, []);
    assert.equal(report.matches, true);
    assert.equal(report.revision, original.revision);
    assert.equal(report.keys, original.keys.length);
    assert.ok(report.startedInMs > 0);
    assert.equal(report.expectedFrom, "manifest", "saveBackup records etcd's revision in the manifest");
    assert.equal(report.expectedRevision, original.revision);
    assert.match(
      renderTestRestore(report),
      new RegExp(`^test restore passed: .* revision ${original.revision} with ${original.keys.length} keys`),
    );
    assert.deepEqual(await leftovers(), before, "its temporary directory is removed");
  });

  test("the test etcd listens on loopback only, over TLS, and refuses a client without its certificate", async () => {
    let probed = false;
    const report = await testRestore({
      ...backup,
      onServing: async (url) => {
        assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
        // etcdctl without a client certificate (server certificate not even checked) gets nothing.
        const ctl = (args: string[]) =>
          run(
            "/usr/bin/etcdctl",
            [`--endpoints=${url}`, "--dial-timeout=2s", "--command-timeout=3s", ...args],
            {
              env: { ...process.env, ETCDCTL_API: "3" },
            },
          );
        await assert.rejects(
          ctl([
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "get",
            "",
            "--from-key",
            "--keys-only",
            "--limit=1",
          ]),
        );
        await assert.rejects(
          fetch(`${url.replace("https:", "http:")}/health`, { signal: AbortSignal.timeout(3000) }),
        );
        probed = true;
      },
    });
    assert.ok(probed);
    assert.equal(report.matches, true, report.problems.join("\n"));
  });

  test("a manifest revision that disagrees with the snapshot is reported", async () => {
    const entry = {
      ...backup.entry,
      manifest: { ...backup.entry.manifest!, etcd: { revision: original.revision + 5 } },
    };
    const report = await testRestore({ ...backup, entry });
    assert.equal(report.matches, false);
    assert.match(
      report.problems.join("\n"),
      new RegExp(
        `snapshot status revision ${original.revision} differs from the manifest's ${original.revision + 5}`,
      ),
    );
  });

  test("a flipped byte inside the stored object fails with the reason", async () => {
    const path = join(work, "store", backup.entry.key);
    const good = await readFile(path);
    try {
      const bad = Buffer.from(good);
      bad[Math.floor(bad.length / 2)]! ^= 0x01;
      await writeFile(path, bad);
      const before = await leftovers();
      const report = await testRestore(backup);
      assert.equal(report.matches, false);
      assert.equal(report.revision, 0);
      assert.match(report.problems[0]!, /^backup does not read back: /);
      assert.match(renderTestRestore(report), /^test restore FAILED\n {2}- backup does not read back/);
      assert.deepEqual(await leftovers(), before);
    } finally {
      await writeFile(path, good);
    }
  });

  test("a truncated object fails with the reason", async () => {
    const path = join(work, "store", backup.entry.key);
    const good = await readFile(path);
    try {
      await truncate(path, good.length - 1000);
      const report = await testRestore(backup);
      assert.equal(report.matches, false);
      assert.match(report.problems[0]!, /^backup does not read back: .*(corrupted|truncated)/);
    } finally {
      await writeFile(path, good);
    }
  });

  test("an interrupted test restore rejects saying so, and stops its etcd and removes its folder", async () => {
    const before = await leftovers();
    const controller = new AbortController();
    const running = testRestore({ ...backup, signal: controller.signal });
    // Interrupt once etcd runs: its watchdog records it in the work folder.
    let server: { pid: number } | undefined;
    let folder = "";
    for (let i = 0; i < 600 && !server; i++) {
      for (const name of (await leftovers()).filter((f) => !before.includes(f))) {
        folder = join(tmpdir(), name);
        server = await readFile(join(folder, "server.json"), "utf8").then(JSON.parse, () => undefined);
      }
      if (!server) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(server, "etcd was started");
    assert.match(processCommandLine(server.pid) ?? "", /etcd/);
    controller.abort(new Error("interrupted by SIGINT"));
    await assert.rejects(running, (err: Error) => {
      assert.match(err.message, /^test restore interrupted, nothing was tested$/);
      assert.match((err.cause as Error).message, /interrupted by SIGINT/);
      return true;
    });
    assert.equal(processCommandLine(server.pid), undefined, "etcd is stopped");
    await assert.rejects(access(folder), "its folder is removed");
    assert.deepEqual(await leftovers(), before);
  });

  test("a snapshot without a trailer (a copied member/snap/db) restores and passes, as verify accepts it", async () => {
    // The database alone: a snapshot as etcdctl writes it, less its 32-byte sha256 trailer.
    const saved = join(work, "with-trailer.db");
    await etcd.ctl(["snapshot", "save", saved]);
    const db = (await readFile(saved)).subarray(0, -32);
    assert.equal(db.length % 512, 0);
    const dir = join(work, "trailerless");
    const key = `bare-${formatStamp(new Date())}.snap`;
    await rm(dir, { recursive: true, force: true });
    await (await import("node:fs/promises")).mkdir(dir);
    await writeFile(join(dir, key), db);
    const store = new LocalStore(dir);
    const entry = await resolveBackup(store, key);
    const written = await restoreToFile({ store, entry, out: join(work, "bare.db") });
    assert.equal(written.hasTrailer, false);
    assert.equal(written.dbSize, db.length);
    assert.deepEqual(await readFile(join(work, "bare.db")), db, "the database comes out unchanged");
    const report = await testRestore({ store, entry });
    assert.deepEqual(report.problems, []);
    assert.equal(report.matches, true);
    assert.equal(report.expectedFrom, "snapshot status");
    assert.equal(report.keys, original.keys.length);

    // A snapshot cut short (not a whole number of pages) is still refused.
    await writeFile(join(dir, key), db.subarray(0, -100));
    await assert.rejects(
      restoreToFile({ store, entry, out: join(work, "cut.db") }),
      /corrupted or was cut short/,
    );
  });

  test("a missing etcd binary is a problem, not a crash", async () => {
    const entry = await resolveBackup(backup.store, "latest");
    const report = await testRestore({ ...backup, entry, etcdPath: join(work, "no-etcd") });
    assert.equal(report.matches, false);
    assert.match(report.problems[0]!, /no-etcd not found: cannot start the restored member/);
  });
});
