import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { assertOk, runCli } from "../fixtures/cli.ts";
import {
  assertListRestoreVerify,
  assertWrongSecretIsOneLine,
  useS3SaveBench,
} from "../fixtures/s3-save-bench.ts";
import { startS3Server } from "../fixtures/s3-server.ts";

describe("save to S3 and back, with the AWS CLI, age and zstd as peers", () => {
  const bench = useS3SaveBench({
    workPrefix: "etcd-backup-s3e2e-",
    keys: 2000,
    valueSize: 400,
    startServer: () => startS3Server(),
  });

  test("save --to s3:// -> aws s3 cp -> age -d -> zstd -d gives the bytes etcd gave; list and restore read it back", async () => {
    const { etcd, work, identity, recipient, env } = bench();
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
    await bench().aws(["s3", "cp", `s3://backups/prod/${key}`, enc]);
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

    await assertListRestoreVerify(bench(), "s3://backups/prod", key, join(work, "obj.db"));
  });

  test("a wrong secret key is one line naming the credentials, without the secret", async () => {
    await assertWrongSecretIsOneLine(bench());
  });

  test("a missing bucket says so", async () => {
    const r = await runCli(
      ["save", "--endpoints", bench().etcd.endpoint, "--to", "s3://no-such-bucket/x", "--no-encrypt"],
      { env: bench().env },
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^etcd-backup: .*bucket no-such-bucket does not exist/);
  });
});
