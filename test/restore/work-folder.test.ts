import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { currentProcess, processStart, processState } from "../../src/restore/process-identity.ts";
import {
  createWorkFolder,
  describeSweep,
  recordServer,
  sweepWorkFolders,
  WORK_FOLDER_PREFIX,
} from "../../src/restore/work-folder.ts";

const MODULE = join(import.meta.dirname, "..", "..", "src", "restore", "work-folder.ts");

/** Runs a Node child that creates a work folder in `parent`, prints its path, and then waits to be killed. */
async function folderOfChild(
  parent: string,
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; path: string }> {
  const script =
    `const { createWorkFolder } = await import(${JSON.stringify(MODULE)});` +
    `const w = await createWorkFolder("restore", ${JSON.stringify(parent)});` +
    `await (await import("node:fs/promises")).writeFile(w.path + "/snapshot.db", "plain", { mode: 0o600 });` +
    `process.stdout.write(w.path + "\\n"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const path = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.trim());
    });
    child.once("exit", (code) => reject(new Error(`child exited with ${code} before creating its folder`)));
  });
  return { child, path };
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

describe("work folders", () => {
  let root: string;
  let tmp: string;
  const savedTmp = process.env.TMPDIR;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "etcd-backup-workfolder-test-"));
    tmp = join(root, "tmp");
    await mkdir(tmp);
    // The sweep looks in the temporary directory: a private one keeps other tests' folders out of reach.
    process.env.TMPDIR = tmp;
  });

  after(async () => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await rm(root, { recursive: true, force: true });
  });

  test("a work folder is 0700, names its owner, and outside the temporary directory is registered", async () => {
    const parent = join(root, "beside");
    await mkdir(parent);
    const w = await createWorkFolder("to-file", parent);
    const me = currentProcess();
    assert.ok(w.path.startsWith(join(parent, `${WORK_FOLDER_PREFIX}to-file-${me.pid}-${me.start}-`)), w.path);
    assert.equal((await lstat(w.path)).mode & 0o777, 0o700);
    const owner = await lstat(join(w.path, "owner.json"));
    assert.equal(owner.mode & 0o777, 0o600);
    const record = JSON.parse(await readFile(join(w.path, "owner.json"), "utf8"));
    assert.equal(record.owner.pid, process.pid);
    assert.equal(record.owner.start, processStart(process.pid));
    assert.equal(record.kind, "to-file");
    const registry = (await readdir(tmp)).find((n) => n.startsWith(`${WORK_FOLDER_PREFIX}registry-`));
    assert.ok(registry, "registry made in the temporary directory");
    assert.equal((await lstat(join(tmp, registry))).mode & 0o777, 0o700);
    const links = await readdir(join(tmp, registry));
    assert.equal(await readlink(join(tmp, registry, links.find((l) => w.path.endsWith(l))!)), w.path);
    // Its own live folder is never swept.
    assert.deepEqual((await sweepWorkFolders([parent])).removed, []);
    await w.remove();
    await w.remove();
    assert.deepEqual(await readdir(parent), []);
    assert.ok(
      !(await readdir(join(tmp, registry))).some((l) => w.path.endsWith(l)),
      "registry entry removed",
    );
  });

  test("a SIGKILLed owner's folders are swept, from the registry alone too; a live owner's are kept", async () => {
    const parent = join(root, "killed");
    await mkdir(parent);
    const dead = await folderOfChild(parent, { TMPDIR: tmp });
    const inTmp = await folderOfChild(tmp, { TMPDIR: tmp });
    const live = await folderOfChild(parent, { TMPDIR: tmp });
    try {
      await kill9(dead.child);
      await kill9(inTmp.child);
      assert.equal(processState({ pid: dead.child.pid! }), "dead");
      // No `dirs`: the folder beside the target is found through the registry.
      const result = await sweepWorkFolders();
      assert.deepEqual(result.removed.map((r) => r.path).sort(), [dead.path, inTmp.path].sort());
      assert.equal(result.removed.find((r) => r.path === dead.path)?.ownerPid, dead.child.pid);
      assert.deepEqual(result.failures, []);
      assert.match(describeSweep(result).join("\n"), /removed .* left by a killed run \(pid \d+\)/);
      assert.ok(await lstat(live.path), "the live owner's folder stays");
      assert.deepEqual(await readdir(parent), [live.path.slice(parent.length + 1)]);
    } finally {
      await kill9(dead.child);
      await kill9(inTmp.child);
      await kill9(live.child);
    }
    // Once its owner is gone too, a sweep of the directory finds it even with the registry cleared.
    const registry = (await readdir(tmp)).find((n) => n.startsWith(`${WORK_FOLDER_PREFIX}registry-`))!;
    await rm(join(tmp, registry), { recursive: true });
    assert.deepEqual(
      (await sweepWorkFolders([parent])).removed.map((r) => r.path),
      [live.path],
    );
  });

  test("a reused pid does not keep a dead owner's folder: the start time differs", async () => {
    const me = currentProcess();
    const path = join(tmp, `${WORK_FOLDER_PREFIX}read-${me.pid}-1-abcdef`);
    await mkdir(path, { mode: 0o700 });
    await writeFile(
      join(path, "owner.json"),
      JSON.stringify({ owner: { ...me, start: "1" }, kind: "read", created: new Date().toISOString() }),
    );
    assert.equal(processState({ ...me, start: "1" }), "dead");
    assert.deepEqual(
      (await sweepWorkFolders()).removed.map((r) => r.path),
      [path],
    );
  });

  test("an owner in another pid namespace is not judged: its folder stays for a day", async () => {
    const me = currentProcess();
    const path = join(tmp, `${WORK_FOLDER_PREFIX}read-1-2-abcdef`);
    await mkdir(path, { mode: 0o700 });
    await writeFile(
      join(path, "owner.json"),
      JSON.stringify({ owner: { pid: 1, start: "2", boot: me.boot, pidNamespace: "pid:[1]" }, kind: "read" }),
    );
    assert.deepEqual((await sweepWorkFolders()).removed, []);
    // A day later it goes (a container restarted since, sharing the directory, cannot ask its old owner).
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    await utimes(path, dayAgo, dayAgo);
    assert.deepEqual(
      (await sweepWorkFolders()).removed.map((r) => r.path),
      [path],
    );
    await mkdir(path, { mode: 0o700 });
    // Another boot, though, means the owner is gone whatever its namespace.
    await writeFile(
      join(path, "owner.json"),
      JSON.stringify({ owner: { pid: 1, start: "2", boot: "another-boot", pidNamespace: "pid:[1]" } }),
    );
    assert.deepEqual(
      (await sweepWorkFolders()).removed.map((r) => r.path),
      [path],
    );
  });

  test("an owner killed before writing owner.json is read from the folder's name", async () => {
    const { child, path } = await folderOfChild(tmp, { TMPDIR: tmp });
    await kill9(child);
    await rm(join(path, "owner.json"));
    assert.deepEqual(
      (await sweepWorkFolders()).removed.map((r) => r.path),
      [path],
    );
  });

  test("a server left running on a dead owner's folder is killed; one not running on it is left alone", async () => {
    const { child, path } = await folderOfChild(tmp, { TMPDIR: tmp });
    // Stand-ins for a test-restore etcd: long-running processes, one naming the folder on its command line.
    const server = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", "--", join(path, "data")], {
      stdio: "ignore",
    });
    const stranger = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    try {
      await recordServer(path, server.pid!);
      await kill9(child);
      const exited = new Promise((r) => server.once("exit", (_code, signal) => r(signal)));
      const result = await sweepWorkFolders();
      assert.deepEqual(result.removed, [{ path, ownerPid: child.pid, stoppedServer: server.pid }]);
      assert.equal(await exited, "SIGKILL");
      assert.match(describeSweep(result)[0]!, /stopped the etcd \(pid \d+\) still running on it/);

      // A recorded pid whose process does not name the folder (the pid was reused) is not killed.
      const other = await folderOfChild(tmp, { TMPDIR: tmp });
      await recordServer(other.path, stranger.pid!);
      await kill9(other.child);
      assert.deepEqual((await sweepWorkFolders()).removed, [{ path: other.path, ownerPid: other.child.pid }]);
      assert.equal(stranger.exitCode, null);
      assert.equal(stranger.signalCode, null);
    } finally {
      await kill9(child);
      await kill9(server);
      await kill9(stranger);
    }
  });

  test("a tool a killed owner started on its folder (etcdutl restoring into it) is stopped before the folder goes", async () => {
    const { child, path } = await folderOfChild(tmp, { TMPDIR: tmp });
    // A stand-in for `etcdutl snapshot restore … --data-dir <folder>/data`, never recorded: it writes into the folder
    // for as long as it runs, recreating what a sweep removes unless it is stopped first.
    const writer = spawn(
      process.execPath,
      [
        "-e",
        "const fs=require('node:fs');const d=process.argv[1];" +
          "setInterval(()=>{fs.mkdirSync(d,{recursive:true});fs.writeFileSync(d+'/db','plain')},20)",
        join(path, "data"),
      ],
      { stdio: "ignore" },
    );
    try {
      await kill9(child);
      const exited = new Promise((r) => writer.once("exit", (_code, signal) => r(signal)));
      const result = await sweepWorkFolders();
      assert.deepEqual(result.removed, [{ path, ownerPid: child.pid }]);
      const stopped = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r("still running"), 10_000)),
      ]);
      assert.equal(stopped, "SIGKILL", "the tool writing into the folder was not stopped");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await lstat(path).catch(() => null), null, "the folder came back");
    } finally {
      await kill9(child);
      await kill9(writer);
    }
  });

  test("folders older releases left without an owner go once a day old; younger ones stay", async () => {
    const old = join(tmp, "etcd-backup-test-restore-abc123");
    const young = join(tmp, "etcd-backup-read-def456");
    const unrelated = join(tmp, "etcd-backup-testrestore-xyz");
    for (const d of [old, young, unrelated]) await mkdir(d);
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600_000);
    await utimes(old, twoDaysAgo, twoDaysAgo);
    await utimes(unrelated, twoDaysAgo, twoDaysAgo);
    assert.deepEqual(
      (await sweepWorkFolders()).removed.map((r) => r.path),
      [old],
    );
    assert.ok(await lstat(young));
    assert.ok(await lstat(unrelated), "a name that is not ours is never touched");
  });
});
