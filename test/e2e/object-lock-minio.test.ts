import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { S3Store } from "../../src/store/s3.ts";
import { assertOk, keygen, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { startMinio, type TestMinioServer } from "../fixtures/minio-server.ts";
import { minioPeer, skipReason } from "../fixtures/peers.ts";
import { startLog, waitForReach } from "../point-in-time/harness.ts";

/**
 * Immutable backups (S3 Object Lock) against the real MinIO, the only S3 service here that has Object Lock
 * (s3rver has none): the CLI's `save --s3-object-lock` writes locked objects, our `prune` plans around them and
 * shows why, the AWS CLI cannot delete them by version id within their date, a delete marker does not hide them
 * from `list` nor stop `verify`, and a bucket without Object Lock is refused at start with one line.
 *
 * A recording proxy between the CLI and MinIO shows the headers S3 requires on locked writes (mode, date, legal
 * hold, Content-MD5 on the PutObject and on every part).
 */

const DAY_MS = 86_400_000;

interface Recorded {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** A loopback HTTP proxy to `target` that records each request line and headers (the Host is passed through). */
async function recordingProxy(
  target: string,
): Promise<{ endpoint: string; seen: Recorded[]; server: Server }> {
  const seen: Recorded[] = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } });
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, seen, server };
}

describe("immutable backups: S3 Object Lock on MinIO", { skip: skipReason(minioPeer(), "MinIO") }, () => {
  let etcd: EtcdServer;
  let minio: TestMinioServer;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let work: string;
  let snapshot: string;
  let identity: string;
  let recipient: string;
  let env: NodeJS.ProcessEnv;
  let awsConfig: string;

  const aws = async (args: string[]) => {
    try {
      const out = await promisifiedExec(
        "/usr/bin/aws",
        ["--endpoint-url", minio.endpoint, "s3api", ...args],
        {
          env: {
            PATH: process.env.PATH,
            HOME: work,
            AWS_ACCESS_KEY_ID: minio.accessKeyId,
            AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
            AWS_DEFAULT_REGION: "us-east-1",
            AWS_CONFIG_FILE: awsConfig,
            AWS_EC2_METADATA_DISABLED: "true",
          },
          timeout: 60_000,
        },
      );
      return { code: 0, stdout: out.stdout, stderr: out.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  };
  const versions = async (bucket: string, key: string) => {
    const out = await aws(["list-object-versions", "--bucket", bucket, "--prefix", key]);
    assert.equal(out.code, 0, out.stderr);
    const parsed = JSON.parse(out.stdout || "{}") as {
      Versions?: { Key: string; VersionId: string; IsLatest: boolean }[];
      DeleteMarkers?: { Key: string; VersionId: string; IsLatest: boolean }[];
    };
    return {
      data: (parsed.Versions ?? []).filter((v) => v.Key === key),
      markers: (parsed.DeleteMarkers ?? []).filter((v) => v.Key === key),
    };
  };
  const save = async (to: string, extra: string[], cluster: string) => {
    const out = await runCli(
      [
        "save",
        ...["--from-file", snapshot, "--to", to, "--cluster", cluster, "--recipient", recipient],
        ...["--compress", "none", "--s3-part-size", "5", "-o", "json"],
        ...extra,
      ],
      { env },
    );
    assertOk(out);
    return JSON.parse(out.stdout) as { key: string };
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-object-lock-"));
    etcd = await startEtcd();
    // About 7 MiB of snapshot: with 5 MiB parts, a multipart upload of two parts.
    await fillKeys(etcd, 6500, { prefix: "/registry/secrets/default/s-", valueSize: 1000 });
    snapshot = join(work, "snap.db");
    await etcd.ctl(["snapshot", "save", snapshot]);
    minio = await startMinio();
    await minio.createBucket("locked", { objectLock: true });
    await minio.createBucket("plain");
    proxy = await recordingProxy(minio.endpoint);
    env = {
      AWS_ACCESS_KEY_ID: minio.accessKeyId,
      AWS_SECRET_ACCESS_KEY: minio.secretAccessKey,
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL: proxy.endpoint,
      AWS_EC2_METADATA_DISABLED: "true",
    };
    awsConfig = join(work, "aws-config");
    writeFileSync(awsConfig, "[default]\ns3 =\n    addressing_style = path\n");
    ({ identity, recipient } = await keygen(work));
  });

  after(async () => {
    await etcd?.destroy();
    proxy?.server.close();
    await minio?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("governance: locked at upload (headers and Content-MD5 on every part), kept by prune with the reason, undeletable by version id", async () => {
    proxy.seen.length = 0;
    const started = Date.now();
    const first = await save(
      "s3://locked/gov",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "gov",
    );
    // What went over the wire: the object's upload carries the lock, its parts Content-MD5; the marker does not.
    const objectPath = `/locked/gov/${first.key}`;
    const create = proxy.seen.find(
      (r) => r.method === "POST" && pathOf(r) === objectPath && r.url.includes("?uploads"),
    );
    assert.ok(
      create,
      `the object went up as a multipart upload: ${proxy.seen.map((r) => `${r.method} ${r.url}`).join(", ")}`,
    );
    assert.equal(create.headers["x-amz-object-lock-mode"], "GOVERNANCE");
    const until = Date.parse(String(create.headers["x-amz-object-lock-retain-until-date"]));
    assert.ok(until >= started + DAY_MS && until <= Date.now() + DAY_MS + 1000, `retain until ${until}`);
    const parts = proxy.seen.filter(
      (r) => r.method === "PUT" && pathOf(r) === objectPath && r.url.includes("partNumber="),
    );
    assert.ok(parts.length >= 2, `parts: ${parts.length}`);
    for (const p of parts) assert.match(String(p.headers["content-md5"]), /^[A-Za-z0-9+/]{22}==$/, p.url);
    const manifestPut = proxy.seen.find((r) => r.method === "PUT" && pathOf(r) === `${objectPath}.json`);
    assert.equal(manifestPut?.headers["x-amz-object-lock-mode"], "GOVERNANCE");
    assert.ok(manifestPut?.headers["content-md5"], "the manifest's PutObject carries Content-MD5");
    const marker = proxy.seen.find((r) => r.method === "PUT" && pathOf(r) === `${objectPath}.pending`);
    assert.ok(marker, "the claim marker was written");
    assert.equal(marker.headers["x-amz-object-lock-mode"], undefined, "the marker is not locked");

    await sleep(1100);
    const second = await save(
      "s3://locked/gov",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "gov",
    );
    assert.notEqual(second.key, first.key);

    // list and verify show mode and date.
    const list = await runCli(["list", "--to", "s3://locked/gov", "-o", "json"], { env });
    assertOk(list);
    const listed = JSON.parse(list.stdout) as { name: string; lock: { mode: string; retainUntil: string } }[];
    const firstListed = listed.find((e) => e.name === first.key);
    assert.equal(firstListed?.lock.mode, "governance");
    assert.equal(Date.parse(firstListed!.lock.retainUntil), until);
    const table = await runCli(["list", "--to", "s3://locked/gov"], { env });
    assertOk(table);
    assert.match(table.stdout, /LOCK/);
    assert.match(table.stdout, /governance until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    const verify = await runCli(["verify", first.key, "--to", "s3://locked/gov", "-i", identity], { env });
    assertOk(verify);
    assert.match(verify.stdout, /^lock: governance until \d{4}-\d\d-\d\dT/m);

    // prune: the older one is no longer kept by any rule, but the lock keeps it; dry run and real run agree.
    const day = new Date(until).toISOString().slice(0, 10);
    const plans: string[] = [];
    for (const dry of [["--dry-run"], []]) {
      const prune = await runCli(
        ["prune", "--to", "s3://locked/gov", "--keep-last", "1", "-o", "json", ...dry],
        {
          env,
        },
      );
      assertOk(prune);
      const report = JSON.parse(prune.stdout) as {
        backups: {
          name: string;
          action: string;
          reasons: { rule: string; hold?: string }[];
          result?: string;
        }[];
        failures: unknown[];
      };
      const old = report.backups.find((b) => b.name === first.key)!;
      assert.equal(old.action, "keep");
      assert.deepEqual(old.reasons, [{ rule: "locked", hold: `object lock governance until ${day}` }]);
      assert.deepEqual(report.failures, [], "prune never tried to delete it");
      plans.push(JSON.stringify(report.backups.map((b) => [b.name, b.action, b.reasons])));
    }
    assert.equal(plans[0], plans[1], "dry run and real run plan alike");
    const text = await runCli(["prune", "--to", "s3://locked/gov", "--keep-last", "1", "--dry-run"], { env });
    assertOk(text);
    assert.match(text.stdout, new RegExp(`kept: object lock governance until ${day}`));

    // The AWS CLI cannot delete the locked version either (no governance bypass asked).
    const { data } = await versions("locked", `gov/${first.key}`);
    assert.equal(data.length, 1);
    const del = await aws([
      "delete-object",
      ...["--bucket", "locked", "--key", `gov/${first.key}`, "--version-id", data[0]!.VersionId],
    ]);
    assert.notEqual(del.code, 0, "deleting a locked version by id fails");
    assert.match(del.stderr, /AccessDenied|InvalidRequest|WORM/i);
    assert.equal((await versions("locked", `gov/${first.key}`)).data.length, 1, "the version is still there");
  });

  test("a delete marker (a delete without version id) neither hides a locked backup from list nor stops verify or prune's hold", async () => {
    const { key } = await save(
      "s3://locked/marker",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "marker",
    );
    await sleep(1100);
    await save(
      "s3://locked/marker",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "marker",
    );
    for (const k of [key, `${key}.json`]) {
      const del = await aws(["delete-object", "--bucket", "locked", "--key", `marker/${k}`]);
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stdout, /"DeleteMarker": true/);
    }
    const hidden = await aws(["head-object", "--bucket", "locked", "--key", `marker/${key}`]);
    assert.notEqual(hidden.code, 0, "a plain HEAD sees the delete marker");

    const list = await runCli(["list", "--to", "s3://locked/marker", "-o", "json"], { env });
    assertOk(list);
    const entry = (
      JSON.parse(list.stdout) as { name: string; state: string; behindDeleteMarker?: boolean }[]
    ).find((e) => e.name === key);
    assert.equal(entry?.state, "complete", "still listed with its manifest");
    assert.equal(entry?.behindDeleteMarker, true);
    const table = await runCli(["list", "--to", "s3://locked/marker"], { env });
    assert.match(table.stdout, /behind a delete marker/);
    assertOk(await runCli(["verify", key, "--to", "s3://locked/marker", "-i", identity], { env }));

    // Prune does not count the marker as freeing anything: the data is still locked, so it is kept.
    const prune = await runCli(["prune", "--to", "s3://locked/marker", "--keep-last", "1", "-o", "json"], {
      env,
    });
    assertOk(prune);
    const report = JSON.parse(prune.stdout) as {
      backups: { name: string; action: string; reasons: { rule: string }[] }[];
      freedBytes: number;
    };
    assert.equal(report.backups.find((b) => b.name === key)?.action, "keep");
    assert.equal(report.freedBytes, 0);
    assert.equal((await versions("locked", `marker/${key}`)).data.length, 1);
  });

  test("once the date has passed, prune deletes every version (not a delete marker): the space is freed", async () => {
    const { key } = await save(
      "s3://locked/expire",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "expire",
    );
    await sleep(1100);
    await save(
      "s3://locked/expire",
      ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      "expire",
    );
    // Shorten the lock to a few seconds from now (governance allows it with the bypass; compliance never would).
    // Each date a few seconds ahead of its own request (the AWS CLI takes a second or more to start).
    let latest = 0;
    for (const k of [key, `${key}.json`]) {
      latest = Date.now() + 5000;
      const soon = new Date(latest).toISOString();
      const out = await aws([
        "put-object-retention",
        ...["--bucket", "locked", "--key", `expire/${k}`, "--bypass-governance-retention"],
        ...["--retention", JSON.stringify({ Mode: "GOVERNANCE", RetainUntilDate: soon })],
      ]);
      assert.equal(out.code, 0, out.stderr);
    }
    await sleep(Math.max(0, latest - Date.now()) + 1000);
    const prune = await runCli(["prune", "--to", "s3://locked/expire", "--keep-last", "1", "-o", "json"], {
      env,
    });
    assertOk(prune);
    const report = JSON.parse(prune.stdout) as {
      backups: { name: string; action: string; result?: string }[];
    };
    assert.deepEqual(
      report.backups.filter((b) => b.name === key).map((b) => [b.action, b.result]),
      [["delete", "deleted"]],
    );
    for (const k of [key, `${key}.json`]) {
      const left = await versions("locked", `expire/${k}`);
      assert.deepEqual(
        [left.data.length, left.markers.length],
        [0, 0],
        `${k}: no version and no marker left`,
      );
    }
  });

  test("compliance: kept by prune, undeletable by version id even with the governance bypass", async () => {
    const { key } = await save(
      "s3://locked/comp",
      ["--s3-object-lock", "compliance", "--s3-object-lock-days", "1"],
      "comp",
    );
    await sleep(1100);
    await save("s3://locked/comp", ["--s3-object-lock", "compliance", "--s3-object-lock-days", "1"], "comp");
    const retention = JSON.parse(
      (await aws(["get-object-retention", "--bucket", "locked", "--key", `comp/${key}`])).stdout,
    ) as { Retention: { Mode: string; RetainUntilDate: string } };
    assert.equal(retention.Retention.Mode, "COMPLIANCE");
    const day = retention.Retention.RetainUntilDate.slice(0, 10);
    const prune = await runCli(["prune", "--to", "s3://locked/comp", "--keep-last", "1"], { env });
    assertOk(prune);
    assert.match(prune.stdout, new RegExp(`keep .*${key}.*kept: object lock compliance until ${day}`));
    const { data } = await versions("locked", `comp/${key}`);
    const del = await aws([
      "delete-object",
      ...["--bucket", "locked", "--key", `comp/${key}`, "--version-id", data[0]!.VersionId],
      "--bypass-governance-retention",
    ]);
    assert.notEqual(del.code, 0);
    assert.equal((await versions("locked", `comp/${key}`)).data.length, 1);
    const verify = await runCli(["verify", key, "--to", "s3://locked/comp", "-i", identity], { env });
    assertOk(verify);
    assert.match(verify.stdout, /^lock: compliance until /m);
  });

  test("legal hold: kept by prune until lifted, undeletable by version id", async () => {
    const { key } = await save("s3://locked/hold", ["--s3-legal-hold"], "hold");
    await sleep(1100);
    await save("s3://locked/hold", ["--s3-legal-hold"], "hold");
    const prune = await runCli(["prune", "--to", "s3://locked/hold", "--keep-last", "1", "-o", "json"], {
      env,
    });
    assertOk(prune);
    const old = (
      JSON.parse(prune.stdout) as { backups: { name: string; action: string; reasons: unknown[] }[] }
    ).backups.find((b) => b.name === key);
    assert.deepEqual([old?.action, old?.reasons], ["keep", [{ rule: "locked", hold: "legal hold" }]]);
    const { data } = await versions("locked", `hold/${key}`);
    const del = await aws([
      "delete-object",
      ...["--bucket", "locked", "--key", `hold/${key}`, "--version-id", data[0]!.VersionId],
      "--bypass-governance-retention",
    ]);
    assert.notEqual(del.code, 0);
    const list = await runCli(["list", "--to", "s3://locked/hold", "-o", "json"], { env });
    const entry = (JSON.parse(list.stdout) as { name: string; lock: { legalHold: boolean } }[]).find(
      (e) => e.name === key,
    );
    assert.equal(entry?.lock.legalHold, true);
  });

  test("log: segments and their manifests are written locked, chain and head records are not; prune keeps held segments with the reason", async () => {
    const store = new S3Store({
      bucket: "locked",
      prefix: "pitr",
      settings: { endpoint: minio.endpoint },
      credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    });
    const revision = async () =>
      (JSON.parse(await etcd.ctl(["get", "/", "-w", "json"])) as { header: { revision: number } }).header
        .revision;
    const lock = ["--s3-object-lock", "governance", "--s3-object-lock-days", "1"];
    let final = 0;
    let logStderr = "";
    const log = startLog(
      [
        ...["--endpoints", etcd.endpoint, "--to", "s3://locked/pitr", "--cluster", "pitr"],
        ...["--recipient", recipient, "--segment-interval", "1s", ...lock],
      ],
      env,
    );
    try {
      // The log takes its chain's base backup first: writes before it would land in no segment.
      for (
        const deadline = Date.now() + 60_000;
        (await readLogCatalog(store, { cluster: "pitr" })).length === 0;
      ) {
        assert.ok(Date.now() < deadline, `the log started no chain: ${log.stderr()}`);
        await sleep(200);
      }
      for (let i = 0; i < 20; i++) await etcd.ctl(["put", `/registry/configmaps/default/a-${i}`, `v${i}`]);
      await waitForReach(store, "pitr", await revision(), log);
      // A later full backup: the segments before it serve no point once the log window has passed it.
      const mid = await runCli(
        [
          "save",
          "--endpoints",
          etcd.endpoint,
          "--to",
          "s3://locked/pitr",
          "--cluster",
          "pitr",
          "--recipient",
          recipient,
          ...lock,
        ],
        { env },
      );
      assertOk(mid);
      for (let i = 0; i < 20; i++) await etcd.ctl(["put", `/registry/configmaps/default/b-${i}`, `v${i}`]);
      final = await revision();
      await waitForReach(store, "pitr", final, log);
    } finally {
      const code = await log.stop();
      logStderr = log.stderr();
      if (code !== 0) store.destroy();
      assert.equal(code, 0, log.stderr());
    }
    store.destroy();
    const listed = await aws(["list-objects-v2", "--bucket", "locked", "--prefix", "pitr/"]);
    const keys = (JSON.parse(listed.stdout) as { Contents: { Key: string }[] }).Contents.map((c) => c.Key);
    const segments = keys.filter((k) => /\.seg\.zst\.age$/.test(k));
    assert.ok(segments.length >= 2, keys.join(", "));
    const lockOf = async (key: string) =>
      (
        JSON.parse((await aws(["head-object", "--bucket", "locked", "--key", key])).stdout) as {
          ObjectLockMode?: string;
        }
      ).ObjectLockMode;
    for (const k of [segments[0]!, `${segments[0]!}.json`]) assert.equal(await lockOf(k), "GOVERNANCE", k);
    for (const k of keys.filter((k) => /(chain|head)\.json$/.test(k)))
      assert.equal(await lockOf(k), undefined, k);

    await sleep(1500);
    type LogReport = { log: { removed: { key: string }[]; held: { key: string; reason: string }[] } };
    const prune = await runCli(
      [
        "prune",
        "--to",
        "s3://locked/pitr",
        "--keep-last",
        "5",
        "--keep-log-within",
        "1s",
        "--dry-run",
        "-o",
        "json",
      ],
      { env },
    );
    assertOk(prune);
    const report = JSON.parse(prune.stdout) as LogReport;
    assert.ok(
      report.log.held.length >= 2,
      `final ${final} ${JSON.stringify(report.log)} ${keys.join(" ")} ${logStderr}`,
    );
    for (const h of report.log.held)
      assert.match(h.reason, /^kept: object lock governance until \d{4}-\d\d-\d\d$/);
    assert.ok(
      !report.log.removed.some((r) => /\.seg\.zst\.age(\.json)?$/.test(r.key)),
      "no locked segment planned for removal",
    );
    const real = await runCli(
      ["prune", "--to", "s3://locked/pitr", "--keep-last", "5", "--keep-log-within", "1s"],
      { env },
    );
    assertOk(real);
    assert.match(real.stdout, /revision log: kept \d+ object\(s\) retention would remove, held by the store/);
  });

  test("save-config: the archive and its manifest are written locked too", async () => {
    const dir = join(work, "pki");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "ca.crt"), "not a real certificate\n");
    const out = await runCli(
      [
        "save-config",
        ...["--path", dir, "--to", "s3://locked/cfg", "--cluster", "cfg", "--recipient", recipient],
        ...["--s3-object-lock", "compliance", "--s3-object-lock-days", "1", "-o", "json"],
      ],
      { env },
    );
    assertOk(out);
    const { key } = JSON.parse(out.stdout) as { key: string };
    for (const k of [key, `${key}.json`]) {
      const head = JSON.parse(
        (await aws(["head-object", "--bucket", "locked", "--key", `cfg/${k}`])).stdout,
      ) as {
        ObjectLockMode?: string;
      };
      assert.equal(head.ObjectLockMode, "COMPLIANCE", k);
    }
    const plain = await runCli(
      [
        "save-config",
        ...["--path", dir, "--to", "s3://plain/cfg", "--recipient", recipient],
        ...["--s3-object-lock", "compliance", "--s3-object-lock-days", "1"],
      ],
      { env },
    );
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /^etcd-backup: bucket plain has no Object Lock \(/);
  });

  test("a bucket without Object Lock is refused at start with one line, before anything is written", async () => {
    proxy.seen.length = 0;
    const out = await runCli(
      [
        "save",
        ...["--from-file", snapshot, "--to", "s3://plain/p", "--recipient", recipient],
        ...["--s3-object-lock", "governance", "--s3-object-lock-days", "1"],
      ],
      { env },
    );
    assert.equal(out.code, 2, out.stderr);
    assert.equal(
      out.stderr,
      "etcd-backup: bucket plain has no Object Lock (create it with aws s3api create-bucket --object-lock-enabled-for-bucket, or ask for no object lock)\n",
    );
    assert.ok(!out.stderr.includes(minio.secretAccessKey));
    assert.deepEqual(
      proxy.seen.filter((r) => r.method === "PUT" || r.method === "POST").map((r) => r.url),
      [],
      "nothing was written",
    );
    const hold = await runCli(
      ["save", "--from-file", snapshot, "--to", "s3://plain/p", "--recipient", recipient, "--s3-legal-hold"],
      { env },
    );
    assert.equal(hold.code, 2);
    assert.match(hold.stderr, /^etcd-backup: bucket plain has no Object Lock \(.*ask for no legal hold\)\n$/);
    // The daemon and the log refuse at start too, before serving or reading etcd.
    const line =
      "etcd-backup: bucket plain has no Object Lock (create it with aws s3api create-bucket --object-lock-enabled-for-bucket, or ask for no object lock)\n";
    const lock = ["--s3-object-lock", "compliance", "--s3-object-lock-days", "2"];
    const daemon = await runCli(
      [
        "daemon",
        "--schedule",
        "@daily",
        "--to",
        "s3://plain/d",
        "--recipient",
        recipient,
        "--metrics-addr",
        "127.0.0.1:0",
        ...lock,
      ],
      { env, timeoutMs: 30_000 },
    );
    assert.deepEqual([daemon.code, daemon.stderr], [2, line]);
    const log = await runCli(
      ["log", "--endpoints", etcd.endpoint, "--to", "s3://plain/l", "--recipient", recipient, ...lock],
      { env, timeoutMs: 30_000 },
    );
    assert.deepEqual([log.code, log.stderr], [2, line]);
  });

  test("a lock mode without days is one usage line", async () => {
    const out = await runCli(
      [
        "save",
        ...["--from-file", snapshot, "--to", "s3://locked/days", "--recipient", recipient],
        ...["--s3-object-lock", "compliance"],
      ],
      { env },
    );
    assert.equal(out.code, 2);
    assert.equal(out.stderr.split("\n").length, 2, out.stderr);
    assert.match(
      out.stderr,
      /^etcd-backup: --s3-object-lock-days: is required with --s3-object-lock compliance/,
    );
  });
});

/** A recorded request's path, decoded (the SDK escapes the colons of backup names). */
function pathOf(r: Recorded): string {
  return decodeURIComponent(r.url.split("?")[0]!);
}

function promisifiedExec(
  file: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; timeout: number },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, options, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}
