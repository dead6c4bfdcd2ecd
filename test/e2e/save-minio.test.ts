import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { startMinio } from "../fixtures/minio-server.ts";
import { minioPeer, skipReason } from "../fixtures/peers.ts";
import {
  assertListRestoreVerify,
  assertWrongSecretIsOneLine,
  useS3SaveBench,
} from "../fixtures/s3-save-bench.ts";

/**
 * test/e2e/save-s3.test.ts against the real MinIO instead of s3rver, with etcd 3.6 (the default peer) as the
 * source and big enough a snapshot for a multipart upload: the CLI saves, the AWS CLI fetches, age and zstd
 * decode to the bytes etcd gave, and list, restore, verify and prune read it back.
 */
describe("save to MinIO and back, with the AWS CLI, age and zstd as peers", {
  skip: skipReason(minioPeer(), "MinIO"),
}, () => {
  const bench = useS3SaveBench({
    workPrefix: "etcd-backup-minio-e2e-",
    // About 12 MiB of values: the snapshot goes up in several 5 MiB parts.
    keys: 12_000,
    valueSize: 1000,
    startServer: () => startMinio(),
  });

  test("save --to s3:// -> aws s3 cp -> age -d -> zstd -d gives the bytes etcd gave; list, restore, verify read it", async () => {
    const { etcd, work, identity, recipient, env, aws } = bench();
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

    await assertListRestoreVerify(bench(), "s3://backups/prod", key, join(work, "obj.db"));
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
    const { etcd, work, env } = bench();
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
    await assertWrongSecretIsOneLine(bench());
  });
});
