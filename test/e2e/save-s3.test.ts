import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

describe("save to S3 and back, with the AWS CLI, age and zstd as peers", () => {
  let etcd: EtcdServer;
  let s3: TestS3Server;
  let work: string;
  let identity: string;
  let recipient: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-s3e2e-"));
    etcd = await startEtcd();
    await fillKeys(etcd, 2000, { prefix: "/registry/secrets/default/s-", valueSize: 400 });
    s3 = await startS3Server();
    await s3.createBucket("backups");
    env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: s3.endpoint,
    };
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("save --to s3:// -> aws s3 cp -> age -d -> zstd -d gives the bytes etcd gave; list and restore read it back", async () => {
    const save = await runCli(
      [
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        "s3://backups/prod",
        "--cluster",
        "prod",
        "--recipient",
        recipient,
        "-o",
        "json",
      ],
      { env },
    );
    assertOk(save);
    const { key, manifest } = JSON.parse(save.stdout);
    assert.match(key, /^prod-.*\.snap\.zst\.age$/);

    const enc = join(work, "obj.age");
    // The AWS CLI, configured for path-style addressing (s3rver has no virtual hosts) and nothing else.
    const awsConfig = join(work, "aws-config");
    writeFileSync(awsConfig, "[default]\ns3 =\n    addressing_style = path\n");
    // Asynchronously: the S3 server runs in this process and must keep serving while the CLI runs.
    await promisify(execFile)(
      "/usr/bin/aws",
      ["--endpoint-url", s3.endpoint, "s3", "cp", `s3://backups/prod/${key}`, enc],
      {
        env: {
          PATH: process.env.PATH,
          HOME: work,
          ...env,
          AWS_CONFIG_FILE: awsConfig,
          AWS_EC2_METADATA_DISABLED: "true",
        },
        timeout: 60_000,
      },
    );
    execFileSync("age", ["-d", "-i", identity, "-o", join(work, "obj.zst"), enc]);
    execFileSync("zstd", ["-q", "-d", join(work, "obj.zst"), "-o", join(work, "obj.db")]);
    assert.equal(
      execFileSync("sha256sum", [join(work, "obj.db")])
        .toString()
        .split(" ")[0],
      manifest.sha256,
    );
    const ref = join(work, "ref.db");
    await etcd.ctl(["snapshot", "save", ref]);
    const status = (f: string) =>
      execFileSync("etcdctl", ["snapshot", "status", "-w", "json", f], {
        env: { ...process.env, ETCDCTL_API: "3" },
      }).toString();
    assert.equal(status(join(work, "obj.db")), status(ref));

    const list = await runCli(["list", "--to", "s3://backups/prod", "-o", "json"], { env });
    assertOk(list);
    assert.deepEqual(
      JSON.parse(list.stdout).map((e: { name: string; state: string }) => [e.name, e.state]),
      [[key, "complete"]],
    );
    const out = join(work, "restored.db");
    assertOk(
      await runCli(["restore", "latest", "--to", "s3://backups/prod", "-i", identity, "--to-file", out], {
        env,
      }),
    );
    assert.deepEqual(readFileSync(out), readFileSync(join(work, "obj.db")));
    const verify = await runCli(["verify", "latest", "--to", "s3://backups/prod", "-i", identity], { env });
    assertOk(verify);
  });

  test("a wrong secret key is one line naming the credentials, without the secret", async () => {
    const r = await runCli(["save", "--endpoints", etcd.endpoint, "--to", "s3://backups/x", "--no-encrypt"], {
      env: { ...env, AWS_SECRET_ACCESS_KEY: "definitely-wrong-secret" },
    });
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /credential|AWS_SECRET_ACCESS_KEY/i);
    assert.ok(!r.stderr.includes("definitely-wrong-secret"));
  });

  test("a missing bucket says so", async () => {
    const r = await runCli(
      ["save", "--endpoints", etcd.endpoint, "--to", "s3://no-such-bucket/x", "--no-encrypt"],
      { env },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^etcd-backup: .*bucket no-such-bucket does not exist/);
  });
});
