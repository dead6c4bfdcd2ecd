/**
 * talos-backup drop-in, end to end with the built CLI: exactly talos-backup's environment (and a talosconfig where
 * talosctl looks for it), no argument; the Talos API is the stand-in (test/fixtures/talos-standin.ts) serving a
 * real etcd's snapshots, the bucket is s3rver, and the object is fetched with the AWS CLI and opened with age.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";

const run = promisify(execFile);

let dir: string;
let home: string;
let pki: TestPki;
let etcd: EtcdServer;
let talos: TalosStandIn;
let s3: TestS3Server;
let recipient: string;
let identityFile: string;

/** The environment of talos-backup's sample CronJob, pointed at the test servers; nothing of ours. */
function talosBackupEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: "us-west-2",
    CUSTOM_S3_ENDPOINT: s3.endpoint,
    BUCKET: "talos-backups",
    AGE_X25519_PUBLIC_KEY: recipient,
    ...extra,
  };
}

async function runClean(args: string[], env: NodeJS.ProcessEnv) {
  // runCli merges process.env; blank out what a developer's shell might carry.
  const blank: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) {
    if (/^(ETCDCTL_|ETCD_BACKUP_|AWS_|TALOS|CLUSTER_NAME|S3_PREFIX|BUCKET)/.test(k)) blank[k] = "";
  }
  return await runCli(args, { env: { ...blank, ...env } });
}

async function fetchObject(key: string): Promise<string> {
  const out = join(dir, `obj-${Date.now()}`);
  await run("aws", ["--endpoint-url", s3.endpoint, "s3", "cp", `s3://talos-backups/${key}`, out], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
    },
  });
  return out;
}

async function ageDecrypt(file: string): Promise<Buffer> {
  const out = `${file}.plain`;
  await run("age", ["-d", "-i", identityFile, "-o", out, file]);
  return readFileSync(out);
}

function statusOf(file: string): Promise<string> {
  return etcd.ctl(["snapshot", "status", file, "-w", "json"]).then((s) => s.trim());
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "talos-dropin-"));
  home = join(dir, "home");
  mkdirSync(join(home, ".talos"), { recursive: true });
  pki = makePki(dir);
  const cert = issueCert(pki, "backup", { cn: "talos-backup", usage: "client", org: "os:etcd:backup" });
  etcd = await startEtcd();
  await fillKeys(etcd, 500);
  talos = await startTalosStandIn({
    caCert: pki.caCert,
    serverCert: pki.serverCert,
    serverKey: pki.serverKey,
    etcd,
  });
  // As a Talos ServiceAccount's secret has it: one context, one endpoint, no nodes.
  writeFileSync(
    join(home, ".talos", "config"),
    talosconfigYaml({ context: "prod-lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...cert }),
  );
  s3 = await startS3Server();
  await s3.createBucket("talos-backups");
  identityFile = join(dir, "key.txt");
  await run("age-keygen", ["-o", identityFile]);
  recipient = /public key: (age1[0-9a-z]+)/.exec(readFileSync(identityFile, "utf8"))![1]!;
});

after(async () => {
  await talos?.stop();
  await s3?.stop();
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe("talos-backup drop-in (built CLI)", () => {
  test("no argument: <context>/<context>-<time>.snap.age, age -d gives the served snapshot", async () => {
    const res = await runClean(["save"], talosBackupEnv());
    assert.equal(res.code, 0, res.stderr);
    const key = /^saved (\S+) to /.exec(res.stdout)?.[1];
    assert.ok(key, res.stdout);
    assert.match(key, /^prod-lab-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.age$/);
    // The store is s3://talos-backups/prod-lab: the object key in the bucket is talos-backup's layout.
    assert.match(res.stdout, /to s3:\/\/talos-backups\/prod-lab/);
    const plain = await ageDecrypt(await fetchObject(`prod-lab/${key}`));
    const served = talos.served.at(-1)!;
    assert.equal(createHash("sha256").update(plain).digest("hex"), served.sha256);
    assert.equal(talos.calls.at(-1)!.node, undefined, "no node metadata: the endpoint's node answers");
    // The same database as an independent etcdctl snapshot save of that etcd.
    const direct = join(dir, "direct.db");
    await etcd.ctl(["snapshot", "save", direct]);
    const plainFile = join(dir, "plain.db");
    writeFileSync(plainFile, plain);
    assert.equal(await statusOf(plainFile), await statusOf(direct));
  });

  test("CLUSTER_NAME, S3_PREFIX and ENABLE_COMPRESSION=true: <prefix>/<cluster>-<time>.snap.zst.age", async () => {
    const res = await runClean(
      ["save"],
      talosBackupEnv({
        CLUSTER_NAME: "prod-cluster",
        S3_PREFIX: "important/backups",
        ENABLE_COMPRESSION: "true",
      }),
    );
    assert.equal(res.code, 0, res.stderr);
    const key = /^saved (\S+) to /.exec(res.stdout)?.[1] ?? "";
    assert.match(key, /^prod-cluster-\S+Z\.snap\.zst\.age$/);
    const compressed = await ageDecrypt(await fetchObject(`important/backups/${key}`));
    const plainFile = join(dir, "zst.db");
    writeFileSync(`${plainFile}.zst`, compressed);
    await run("zstd", ["-d", "-q", "-f", `${plainFile}.zst`, "-o", plainFile]);
    assert.equal(
      createHash("sha256").update(readFileSync(plainFile)).digest("hex"),
      talos.served.at(-1)!.sha256,
    );
  });

  test("DISABLE_ENCRYPTION=true stores the plain snapshot", async () => {
    const res = await runClean(
      ["save"],
      talosBackupEnv({ DISABLE_ENCRYPTION: "true", AGE_X25519_PUBLIC_KEY: "" }),
    );
    assert.equal(res.code, 0, res.stderr);
    const key = /^saved (\S+) to /.exec(res.stdout)?.[1] ?? "";
    assert.match(key, /^prod-lab-\S+Z\.snap$/);
    const plain = readFileSync(await fetchObject(`prod-lab/${key}`));
    assert.equal(createHash("sha256").update(plain).digest("hex"), talos.served.at(-1)!.sha256);
  });
});
