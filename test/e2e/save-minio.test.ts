import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { minioPeer, skipReason } from "../fixtures/peers.ts";

/**
 * test/e2e/save-s3.test.ts against the real MinIO instead of s3rver, with etcd 3.6 (the default peer) as the
 * source and big enough a snapshot for a multipart upload: the CLI saves, the AWS CLI fetches, age and zstd
 * decode to the bytes etcd gave, and list, restore, verify and prune read it back.
 */
describe("save to MinIO and back, with the AWS CLI, age and zstd as peers", {
  skip: skipReason(minioPeer(), "MinIO"),
}, () => {
  let etcd: EtcdServer;
  let minio: TestMinioServer;
  let work: string;
  let identity: string;
  let recipient: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-minio-e2e-"));
    etcd = await startEtcd();
    // About 12 MiB of values: the snapshot goes up in several 5 MiB parts.
    await fillKeys(etcd, 12_000, { prefix: "/registry/secrets/default/s-", valueSize: 1000 });
    minio = await startMinio();
    await minio.createBucket("backups");
    env = {
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: minio.endpoint,
    };
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    await minio?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("save --to s3:// -> aws s3 cp -> age -d -> zstd -d gives the bytes etcd gave; list, restore, verify read it", async () => {
    const save = await runCli(
      [
        "save",
        ...["--endpoints", etcd.endpoint, "--to", "s3://backups/prod", "--cluster", "prod"],
        ...["--recipient", recipient, "--compress", "none", "-o", "json"],
      ],
      { env },
    );
    assertOk(save);
    const { key, manifest } = JSON.parse(save.stdout);
    assert.match(key, /^prod-.*\.snap\.age$/);

    const enc = join(work, "obj.age");
    const awsConfig = join(work, "aws-config");
    writeFileSync(awsConfig, "[default]\ns3 =\n    addressing_style = path\n");
    const aws = (args: string[]) =>
      promisify(execFile)("/usr/bin/aws", ["--endpoint-url", minio.endpoint, ...args], {
        env: {
          PATH: process.env.PATH,
          HOME: work,
          ...env,
          AWS_CONFIG_FILE: awsConfig,
          AWS_EC2_METADATA_DISABLED: "true",
        },
        timeout: 60_000,
      });
    await aws(["s3", "cp", `s3://backups/prod/${key}`, enc]);
    // Uploaded in parts: MinIO's ETag counts them.
    const head = JSON.parse(
      (await aws(["s3api", "head-object", "--bucket", "backups", "--key", `prod/${key}`])).stdout,
    );
    assert.match(head.ETag, /-\d+"$/, "a multipart object");
    execFileSync("age", ["-d", "-i", identity, "-o", join(work, "obj.db"), enc]);
    assert.equal(
      execFileSync("sha256sum", [join(work, "obj.db")])
        .toString()
        .split(" ")[0],
      manifest.sha256,
    );
    const ref = join(work, "ref.db");
    await etcd.ctl(["snapshot", "save", ref]);
    const status = (f: string) =>
      execFileSync(etcd.peer.etcdutl ?? etcd.peer.etcdctl, ["snapshot", "status", "-w", "json", f], {
        env: etcd.peer.ctlEnv,
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
    assertOk(await runCli(["verify", "latest", "--to", "s3://backups/prod", "-i", identity], { env }));
    const ours = await runCli(
      ["status", "latest", "--to", "s3://backups/prod", "-i", identity, "-w", "json"],
      {
        env,
      },
    );
    assertOk(ours);
    assert.equal(ours.stdout, status(ref).replace(/\n?$/, "\n"));
  });

  test("zstd-compressed save reads back through zstd -d", async () => {
    const save = await runCli(
      [
        "save",
        ...["--endpoints", etcd.endpoint, "--to", "s3://backups/zstd", "--cluster", "z"],
        ...["--no-encrypt", "-o", "json"],
      ],
      { env },
    );
    assertOk(save);
    const { key, manifest } = JSON.parse(save.stdout);
    const out = join(work, "z.db");
    assertOk(await runCli(["restore", key, "--to", "s3://backups/zstd", "--to-file", out], { env }));
    assert.equal(execFileSync("sha256sum", [out]).toString().split(" ")[0], manifest.sha256);
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
});
