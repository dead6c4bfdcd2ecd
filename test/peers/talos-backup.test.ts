/**
 * The real talos-backup (github.com/siderolabs/talos-backup, built by scripts/install-peers.sh) as a peer: it backs
 * up through our Talos API stand-in (test/fixtures/talos-standin.ts, serving a real etcd's snapshots) into the
 * real MinIO, and the built CLI must list, `status`, restore, `restore --talos-node` and prune what it wrote. Our
 * drop-in (`etcd-backup save`, no argument, the same environment) must write the same key layout and a format
 * that the same `age -d` (then `zstd -d` when compressed) opens.
 *
 * Differences between talos-backup and the drop-in, as its source says (v0.1.0-beta.3, the latest release tag,
 * and its main branch after it); the tests below pin the ones that show in the bucket:
 * - the drop-in writes a manifest (`<key>.json`) beside the object; talos-backup writes the object
 *   alone, so `list` shows its backups as "unmanaged" (usable, no manifest);
 * - talos-backup names the object by the local time zone (Go's RFC 3339: `+01:00` outside UTC), the drop-in always
 *   in UTC (`Z`); the tests run talos-backup with TZ=UTC, as in its container image;
 * - ENABLE_COMPRESSION is read only by talos-backup after v0.1.0-beta.3 (zstd landed on main later); that release
 *   ignores it and uploads `.snap.age`, where the drop-in uploads `.snap.zst.age`;
 * - talos-backup v0.1.0-beta.3 reads USE_PATH_STYLE; its main branch dropped it (minio-go picks the style);
 * - talos-backup stages the snapshot, and its compressed and encrypted copies, as files in its working directory
 *   (plaintext on disk until removed); the drop-in streams and stages nothing;
 * - talos-backup checks the snapshot only by its size (size % 512 == 32, a trailer's room); the drop-in checks
 *   the sha256 trailer itself before anything is stored;
 * - on failure talos-backup logs one line and exits 255 (os.Exit(-1)); the drop-in exits 1 (2 for bad usage).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { defaultEtcdRelease, etcdPeer, minioPeer, talosBackupPeer } from "../fixtures/peers.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";

const run = promisify(execFile);

const peer = talosBackupPeer();
const etcdRelease = defaultEtcdRelease();
const skip =
  (!peer && "talos-backup is not built (see scripts/peers/README.md)") ||
  (!minioPeer() && "MinIO is not built (bash scripts/install-peers.sh minio)") ||
  (!etcdPeer(etcdRelease) && `etcd ${etcdRelease} is not installed`);

const BUCKET = "talos-backups";
const CONTEXT = "prod-lab";
/** talos-backup's object name: `<cluster>-<RFC 3339 time>.snap`, then `.zst`, then `.age`. */
const NAME = /^prod-lab-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap(\.zst)?(\.age)?$/;

/**
 * Whether this talos-backup reads ENABLE_COMPRESSION: releases up to v0.1.0-beta.3 predate its zstd support.
 */
const compresses = peer !== undefined && !/^0\.1\.0-(alpha\.\d+|beta\.[0-3])$/.test(peer.version);

let dir: string;
let pki: TestPki;
let etcd: EtcdServer;
let talos: TalosStandIn;
let minio: TestMinioServer;
let s3: S3Client;
let identityFile: string;
let recipient: string;
let backupConfig: string;
let adminConfig: string;

/** talos-backup's environment (its sample CronJob's variables), pointed at the test servers; nothing of ours. */
function talosBackupEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: join(dir, "home"),
    TZ: "UTC",
    TALOSCONFIG: backupConfig,
    AWS_ACCESS_KEY_ID: minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
    AWS_REGION: "us-east-1",
    CUSTOM_S3_ENDPOINT: minio.endpoint,
    USE_PATH_STYLE: "true",
    BUCKET,
    AGE_X25519_PUBLIC_KEY: recipient,
    ...extra,
  };
}

/** Our CLI with only the given environment of the kinds a developer's shell might carry. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const blank: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) {
    if (/^(ETCDCTL_|ETCD_BACKUP_|AWS_|TALOS|CLUSTER_NAME|S3_PREFIX|BUCKET|ENABLE_|DISABLE_)/.test(k))
      blank[k] = "";
  }
  return await runCli(args, { env: { ...blank, ...env } });
}

/** Our CLI's S3 access to MinIO, for list/status/restore/prune. */
function s3Args(prefix = CONTEXT): string[] {
  return ["--to", `s3://${BUCKET}/${prefix}`, "--s3-endpoint", minio.endpoint];
}

function s3Env(): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: minio.accessKeyId,
    AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
    AWS_REGION: "us-east-1",
    HOME: join(dir, "home"),
  };
}

async function bucketKeys(): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function download(key: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const file = join(dir, `object-${createHash("sha256").update(key).digest("hex").slice(0, 12)}`);
  writeFileSync(file, await got.Body!.transformToByteArray());
  return file;
}

/** The snapshot in an object, opened as a user would: `age -d`, then `zstd -d` for a `.zst` name. */
async function openWithTools(key: string): Promise<Buffer> {
  const object = await download(key);
  const out = `${object}.db`;
  const steps = [key.endsWith(".age") ? `age -d -i "$1" "$2"` : `cat "$2"`];
  if (/\.zst(\.age)?$/.test(key)) steps.push("zstd -d -q -c");
  await run("bash", [
    "-o",
    "pipefail",
    "-c",
    `${steps.join(" | ")} > "$3"`,
    "opener",
    identityFile,
    object,
    out,
  ]);
  return readFileSync(out);
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Waits into the next second: both tools name objects to the second, and two runs must not share a name. */
async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1050 - (Date.now() % 1000)));
}

/** Runs the real talos-backup once; returns the key it added to the bucket. */
async function runTalosBackup(extra: Record<string, string> = {}): Promise<{ key: string; log: string }> {
  await nextSecond();
  const before = new Set(await bucketKeys());
  const work = join(dir, `talos-backup-cwd-${Date.now()}`);
  mkdirSync(work);
  const served = talos.served.length;
  let log: string;
  try {
    const res = await run(peer!.talosBackup, [], { env: talosBackupEnv(extra), cwd: work });
    log = res.stdout + res.stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    assert.fail(`talos-backup failed (exit ${e.code}): ${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
  assert.equal(talos.served.length, served + 1, "talos-backup took one snapshot through the stand-in");
  assert.deepEqual(readdirSync(work), [], "talos-backup removed its staged files");
  const added = (await bucketKeys()).filter((k) => !before.has(k));
  assert.equal(added.length, 1, `talos-backup added exactly one object: ${added.join(", ")}`);
  return { key: added[0]!, log };
}

/** Runs our drop-in (`etcd-backup save`, no argument) with the same environment; returns the object's key. */
async function runDropIn(extra: Record<string, string> = {}): Promise<{ key: string; added: string[] }> {
  await nextSecond();
  const before = new Set(await bucketKeys());
  const res = await cli(["save"], talosBackupEnv(extra));
  assert.equal(res.code, 0, res.stderr);
  const added = (await bucketKeys()).filter((k) => !before.has(k));
  const objects = added.filter((k) => !k.endsWith(".json"));
  assert.equal(objects.length, 1, `the drop-in added one backup object: ${added.join(", ")}`);
  return { key: objects[0]!, added };
}

interface Listed {
  name: string;
  state: string;
  hasManifest: boolean;
  usable: boolean;
}

async function listed(): Promise<Listed[]> {
  const res = await cli(["list", ...s3Args(), "-o", "json"], s3Env());
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as Listed[];
}

const base = (key: string) => key.slice(key.lastIndexOf("/") + 1);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "peer-talos-backup-"));
  mkdirSync(join(dir, "home"));
  pki = makePki(dir);
  etcd = await startEtcd({ release: etcdRelease });
  await fillKeys(etcd, 2000);
  talos = await startTalosStandIn({
    caCert: pki.caCert,
    serverCert: pki.serverCert,
    serverKey: pki.serverKey,
    etcd,
  });
  // As a Talos ServiceAccount's secret has it (role os:etcd:backup): one context, one endpoint, no nodes.
  const backup = issueCert(pki, "backup", { cn: "talos-backup", usage: "client", org: "os:etcd:backup" });
  backupConfig = join(dir, "backup.talosconfig");
  writeFileSync(
    backupConfig,
    talosconfigYaml({ context: CONTEXT, endpoints: [talos.endpoint], caCert: pki.caCert, ...backup }),
  );
  const admin = issueCert(pki, "admin", { cn: "admin", usage: "client", org: "os:admin" });
  adminConfig = join(dir, "admin.talosconfig");
  writeFileSync(
    adminConfig,
    talosconfigYaml({ context: CONTEXT, endpoints: [talos.endpoint], caCert: pki.caCert, ...admin }),
  );
  minio = await startMinio();
  await minio.createBucket(BUCKET);
  s3 = new S3Client({
    endpoint: minio.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  });
  identityFile = join(dir, "key.txt");
  await run("age-keygen", ["-o", identityFile]);
  recipient = /public key: (age1[0-9a-z]+)/.exec(readFileSync(identityFile, "utf8"))![1]!;
});

after(async () => {
  s3?.destroy();
  await talos?.stop();
  await minio?.stop();
  await etcd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`the real talos-backup${peer ? ` ${peer.version}` : ""} against the Talos stand-in and MinIO`, {
  skip,
}, () => {
  let theirs: string;
  let theirSha: string;
  let theirPlain: string;

  test("talos-backup writes <context>/<context>-<UTC time>.snap.age, which age -d opens", async () => {
    const { key, log } = await runTalosBackup();
    process.stderr.write(`# talos-backup ${peer!.version} said:\n${log.replace(/^/gm, "#   ")}\n`);
    theirs = key;
    assert.equal(key.slice(0, key.indexOf("/")), CONTEXT, "prefix: the talosconfig context");
    assert.match(base(key), NAME);
    assert.ok(key.endsWith(".snap.age"), key);
    const plain = await openWithTools(key);
    theirSha = talos.served.at(-1)!.sha256;
    assert.equal(sha256(plain), theirSha, "age -d gives the snapshot the stand-in served");
    theirPlain = join(dir, "theirs.db");
    writeFileSync(theirPlain, plain);
  });

  test("list shows its object as an unmanaged, usable backup", async () => {
    const entry = (await listed()).find((e) => e.name === base(theirs));
    assert.ok(entry, `list names ${base(theirs)}`);
    assert.equal(entry.state, "unmanaged");
    assert.equal(entry.hasManifest, false);
    assert.equal(entry.usable, true);
  });

  test("status of its object equals etcdutl's (etcdctl's on 3.4) on the decrypted snapshot", async () => {
    const tool = etcd.peer.etcdutl ?? etcd.peer.etcdctl;
    for (const format of ["json", "table"] as const) {
      const { stdout: expected } = await run(tool, ["snapshot", "status", "-w", format, theirPlain], {
        env: etcd.peer.ctlEnv,
      });
      const ours = await cli(
        [
          "status",
          base(theirs),
          ...s3Args(),
          "-i",
          identityFile,
          "-w",
          format,
          "--etcd-version",
          etcdRelease,
        ],
        s3Env(),
      );
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(ours.stdout, expected, format);
    }
  });

  test("restore --to-file gives the original snapshot bytes", async () => {
    const out = join(dir, "restored.db");
    const res = await cli(
      ["restore", base(theirs), ...s3Args(), "-i", identityFile, "--to-file", out],
      s3Env(),
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(sha256(readFileSync(out)), theirSha);
  });

  test("restore --talos-node recovers from its object through the stand-in", async () => {
    talos.etcdState = "Preparing";
    try {
      const res = await cli(
        [
          "restore",
          base(theirs),
          ...s3Args(),
          "-i",
          identityFile,
          "--talosconfig",
          adminConfig,
          "--talos-node",
          "10.5.0.2",
        ],
        s3Env(),
      );
      assert.equal(res.code, 0, res.stderr);
      const upload = talos.uploads.at(-1)!;
      assert.equal(upload.sha256, theirSha, "EtcdRecover received the snapshot talos-backup stored");
      assert.equal(upload.node, "10.5.0.2");
      assert.deepEqual(talos.bootstraps.at(-1), {
        node: "10.5.0.2",
        recoverEtcd: true,
        recoverSkipHashCheck: false,
      });
    } finally {
      talos.etcdState = "Running";
    }
  });

  test("the drop-in, same environment: same key layout, same age -d opens it; it adds a manifest", async () => {
    const ours = await runDropIn();
    assert.equal(
      ours.key.slice(0, ours.key.indexOf("/")),
      theirs.slice(0, theirs.indexOf("/")),
      "same prefix",
    );
    assert.match(base(ours.key), NAME);
    assert.equal(
      base(ours.key).replace(/^prod-lab-\S+Z/, "<time>"),
      base(theirs).replace(/^prod-lab-\S+Z/, "<time>"),
      "same name pattern and suffixes",
    );
    // Difference: the manifest (talos-backup writes none).
    assert.deepEqual(ours.added.sort(), [ours.key, `${ours.key}.json`].sort());
    assert.equal(sha256(await openWithTools(ours.key)), talos.served.at(-1)!.sha256);
    const entry = (await listed()).find((e) => e.name === base(ours.key));
    assert.equal(entry?.state, "complete");
  });

  test("ENABLE_COMPRESSION=true: the drop-in writes .snap.zst.age; talos-backup as its release reads the variable", async () => {
    const them = await runTalosBackup({ ENABLE_COMPRESSION: "true" });
    const ours = await runDropIn({ ENABLE_COMPRESSION: "true" });
    assert.ok(ours.key.endsWith(".snap.zst.age"), ours.key);
    // Difference (v0.1.0-beta.3 and older): no compression, whatever ENABLE_COMPRESSION says.
    assert.ok(them.key.endsWith(compresses ? ".snap.zst.age" : ".snap.age"), them.key);
    assert.equal(sha256(await openWithTools(them.key)), talos.served.at(-2)!.sha256);
    assert.equal(sha256(await openWithTools(ours.key)), talos.served.at(-1)!.sha256);
  });

  test("prune --keep-last 1 removes talos-backup's older objects by policy and keeps the newest", async () => {
    const all = await listed();
    const newest = all[0]!;
    const res = await cli(["prune", ...s3Args(), "--keep-last", "1"], s3Env());
    assert.equal(res.code, 0, res.stderr);
    const left = await bucketKeys();
    const theirObjects = all.filter((e) => !e.hasManifest).map((e) => `${CONTEXT}/${e.name}`);
    assert.ok(theirObjects.length >= 2, `talos-backup's objects were listed: ${theirObjects.join(", ")}`);
    for (const key of theirObjects) assert.ok(!left.includes(key), `pruned ${key}; left: ${left.join(", ")}`);
    assert.deepEqual(
      left.filter((k) => !k.endsWith(".json")),
      [`${CONTEXT}/${newest.name}`],
    );
    assert.deepEqual(
      (await listed()).map((e) => e.name),
      [newest.name],
    );
  });
});
