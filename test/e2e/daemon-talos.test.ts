/**
 * The daemon as a talos-backup replacement (built CLI): source talos (the stand-in serving a real etcd), talos-backup's
 * environment (BUCKET, CUSTOM_S3_ENDPOINT, AGE_X25519_PUBLIC_KEY, ENABLE_COMPRESSION) and only a schedule on the
 * command line; a scheduled run stores `<context>/<context>-<time>.snap.zst.age` encrypted to that key.
 */
import assert from "node:assert/strict";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { generateIdentity } from "../../src/age/keys.ts";
import { scrape, spawnDaemon, waitFor } from "../daemon/harness.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { issueCert, makePki } from "../fixtures/pki.ts";
import { freePort } from "../fixtures/ports.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../fixtures/talos-standin.ts";

let dir: string;
let etcd: EtcdServer;
let talos: TalosStandIn;
let s3: TestS3Server;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "daemon-talos-"));
  const pki = makePki(dir);
  const cert = issueCert(pki, "backup", { cn: "talos-backup", usage: "client", org: "os:etcd:backup" });
  etcd = await startEtcd();
  await fillKeys(etcd, 200);
  talos = await startTalosStandIn({
    caCert: pki.caCert,
    serverCert: pki.serverCert,
    serverKey: pki.serverKey,
    etcd,
  });
  writeFileSync(
    join(dir, "talosconfig"),
    talosconfigYaml({ context: "prod-lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...cert }),
  );
  s3 = await startS3Server();
  await s3.createBucket("talos-backups");
});
after(async () => {
  await talos?.stop();
  await s3?.stop();
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the daemon with talos-backup's variables plus `where` (how the talosconfig is found) and checks a run. */
async function dropInRun(where: NodeJS.ProcessEnv): Promise<void> {
  const id = generateIdentity();
  const blank: NodeJS.ProcessEnv = {};
  for (const k of Object.keys(process.env)) {
    if (/^(ETCDCTL_|ETCD_BACKUP_|AWS_|TALOS|CLUSTER_NAME|S3_PREFIX|BUCKET|DISABLE_|ENABLE_)/.test(k))
      blank[k] = "";
  }
  const port = await freePort();
  const daemon = spawnDaemon(
    ["--schedule", "*/2 * * * * *", "--metrics-addr", `127.0.0.1:${port}`, "--log-format", "json"],
    {
      ...blank,
      ...where,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-west-2",
      CUSTOM_S3_ENDPOINT: s3.endpoint,
      BUCKET: "talos-backups",
      CLUSTER_NAME: "prod-lab",
      AGE_X25519_PUBLIC_KEY: id.recipient,
      ENABLE_COMPRESSION: "true",
    },
  );
  try {
    await waitFor(
      "a successful run",
      async () => {
        const m = await scrape(`http://127.0.0.1:${port}`);
        return (m.get('etcd_backup_runs_total{result="success"}') ?? 0) >= 1 ? m : undefined;
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${daemon.output()}`);
    });
    const files = readdirSync(join(s3.directory, "talos-backups", "prod-lab")).filter((f) =>
      f.endsWith(".age._S3rver_object"),
    );
    assert.ok(files.length >= 1, files.join(", "));
    assert.match(files[0]!, /^prod-lab-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.snap\.zst\.age\._S3rver_object$/);
    const manifest = JSON.parse(
      readFileSync(
        join(
          s3.directory,
          "talos-backups",
          "prod-lab",
          files[0]!.replace(/\._S3rver_object$/, ".json._S3rver_object"),
        ),
        "utf8",
      ),
    ) as { sha256: string };
    assert.ok(
      talos.served.some((s) => s.sha256 === manifest.sha256),
      "the stand-in served what was stored",
    );
    const started = daemon.lines().find((l) => l.msg === "daemon started");
    assert.match(String(started?.source), /talos/i);
    assert.equal(started?.store, "s3://talos-backups/prod-lab");
  } finally {
    assert.equal(await daemon.stop(), 0, daemon.output());
  }
}

test("daemon with talos-backup's environment: source talos, zstd + age to AGE_X25519_PUBLIC_KEY, into BUCKET", async () => {
  await dropInRun({ TALOSCONFIG: join(dir, "talosconfig") });
});

test("daemon with talos-backup's environment finds ~/.talos/config by itself, as talosctl and save do", async () => {
  const home = join(dir, "home");
  mkdirSync(join(home, ".talos"), { recursive: true });
  copyFileSync(join(dir, "talosconfig"), join(home, ".talos", "config"));
  await dropInRun({ HOME: home, TALOSCONFIG: "" });
});
