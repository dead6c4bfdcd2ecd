import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { periodOf } from "../../src/catalog/retention.ts";
import { S3Store } from "../../src/store/s3.ts";
import { fakeSnapshot, plantBackup } from "../catalog/fixtures.ts";
import { type RealSnapshot, twoRealSnapshots } from "../catalog/real-snapshots.ts";
import { type CliResult, runCli } from "../fixtures/cli.ts";
import { startS3Server, type TestS3Server } from "../fixtures/s3-server.ts";

const HOUR = 3_600_000;
/** Hourly backups: with their manifests more than 1000 objects, so every listing spans several pages. */
const HOURLY = 520;

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`);
  return r;
}

/**
 * An HTTP proxy in front of s3rver that answers 403 AccessDenied to the deletion of one key and passes
 * everything else through unchanged (the Host header too, so SigV4 signatures still verify).
 */
async function denyingProxy(target: number, deniedKey: () => string): Promise<Server & { port: number }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (req.method === "DELETE" && path.endsWith(`/${deniedKey()}`)) {
      req.resume();
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
      return;
    }
    const upstream = request(
      { host: "127.0.0.1", port: target, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

describe("list and prune on S3 (s3rver) with more than 1000 objects", () => {
  let s3: TestS3Server;
  let proxy: Server & { port: number };
  let work: string;
  let real: RealSnapshot;
  let deniedKey = "";
  // Hour-aligned so the hourly and daily buckets are the same at any moment of the run.
  const top = new Date(Math.floor(Date.now() / HOUR) * HOUR - HOUR);
  const hourly: string[] = [];
  let talosOld = "";
  let pendingKey = "";
  const env = () => ({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  });
  const DEST = "s3://backups/etcd";

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-e2e-catalog-s3-"));
    [, real] = await twoRealSnapshots(work);
    s3 = await startS3Server();
    await s3.createBucket("backups");
    proxy = await denyingProxy(s3.port, () => deniedKey);
    const store = new S3Store({
      bucket: "backups",
      prefix: "etcd",
      settings: { endpoint: s3.endpoint },
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    const small = fakeSnapshot(9);
    const jobs: (() => Promise<string>)[] = [];
    for (let i = 0; i < HOURLY; i++) {
      const time = new Date(top.getTime() - i * HOUR);
      jobs.push(() =>
        plantBackup(store, i === 0 ? real.bytes : small, {
          cluster: "big",
          time,
          compression: i % 3 ? "none" : "zstd",
        }),
      );
    }
    // talos-backup's, in its `<cluster>/` folder, a +02:00 name from long ago; and one of ours, unfinished.
    talosOld = "big/big-2025-01-01T02:00:00+02:00.snap.zst.age";
    jobs.push(() =>
      plantBackup(store, small, { cluster: "big", time: new Date(0), key: talosOld, manifest: false }),
    );
    pendingKey = "big-2025-06-01T00:00:00Z.snap";
    jobs.push(() =>
      plantBackup(store, small, {
        cluster: "big",
        time: new Date(0),
        key: pendingKey,
        manifest: false,
        pending: true,
      }),
    );
    const results: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < jobs.length) {
          const i = next++;
          results[i] = await jobs[i]!();
        }
      }),
    );
    hourly.push(...results.slice(0, HOURLY));
    store.destroy();
  });

  after(async () => {
    proxy?.close();
    await s3?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const listJson = async () =>
    JSON.parse(ok(await runCli(["list", "--to", DEST, "-o", "json"], { env: env() })).stdout) as {
      name: string;
      state: string;
    }[];

  test("list reads every page", async () => {
    const entries = await listJson();
    assert.equal(entries.length, HOURLY + 2);
    assert.equal(entries.filter((e) => e.state === "complete").length, HOURLY);
    assert.deepEqual(
      entries.filter((e) => e.state !== "complete").map((e) => `${e.state} ${e.name}`),
      [`incomplete ${pendingKey}`, `unmanaged ${talosOld}`],
    );
    assert.equal(entries[0]!.name, hourly[0]);
  });

  test("prune --keep-hourly 24 --keep-daily 7: dry run, a denied deletion (exit 1), then the rest", async () => {
    // Expected from the calendar directly: the 24 newest, plus the newest of each of the 7 most recent days.
    const keep = new Set(hourly.slice(0, 24));
    const days = new Set<string>();
    for (const [i, key] of hourly.entries()) {
      const day = periodOf("daily", new Date(top.getTime() - i * HOUR));
      if (!days.has(day) && days.size < 7) {
        days.add(day);
        keep.add(key);
      }
    }
    const toDelete = [...hourly.filter((k) => !keep.has(k)), talosOld];
    const args = ["prune", "--to", DEST, "--keep-hourly", "24", "--keep-daily", "7", "-o", "json"];

    const dry = JSON.parse(ok(await runCli([...args, "--dry-run"], { env: env() })).stdout);
    assert.deepEqual(
      dry.backups
        .filter((b: { action: string }) => b.action === "delete")
        .map((b: { name: string }) => b.name)
        .sort(),
      toDelete.sort(),
    );
    assert.deepEqual(
      dry.leftovers.map((l: { action: string; name: string }) => `${l.action} ${l.name}`),
      [`keep ${pendingKey}`],
      "the pending upload is younger than the grace period",
    );
    assert.equal((await listJson()).length, HOURLY + 2, "dry run deleted nothing");

    // Through the proxy, one object cannot be deleted: its manifest stays, the others go, exit 1.
    deniedKey = `etcd/${toDelete[5]}`;
    const denied = await runCli(args, {
      env: { ...env(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${proxy.port}` },
    });
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(
      denied.stderr.trim(),
      new RegExp(
        `^etcd-backup: 1 deletion failed in s3://backups/etcd: ${toDelete[5]!.replace(/[.+]/g, "\\$&")}: .*denied`,
        "i",
      ),
    );
    assert.equal(denied.stderr.trim().split("\n").length, 1);
    const report = JSON.parse(denied.stdout);
    assert.deepEqual(
      report.failures.map((f: { key: string }) => f.key),
      [toDelete[5]],
    );
    const afterDenied = await listJson();
    assert.deepEqual(
      afterDenied
        .filter((e) => e.state === "complete")
        .map((e) => e.name)
        .sort(),
      [...keep, toDelete[5]!].sort(),
      "the denied backup is still whole (object and manifest)",
    );

    // Once the grace period is over the pending upload counts as crashed and goes too.
    await sleep(1100);
    const last = JSON.parse(ok(await runCli([...args, "--incomplete-grace", "1s"], { env: env() })).stdout);
    assert.deepEqual(
      last.backups
        .filter((b: { action: string }) => b.action === "delete")
        .map((b: { name: string }) => b.name),
      [toDelete[5]],
    );
    assert.deepEqual(
      last.leftovers.map((l: { action: string; keys: string[] }) => `${l.action} ${l.keys.join(",")}`),
      [`delete ${pendingKey},${pendingKey}.pending`],
    );
    const final = await listJson();
    assert.deepEqual(final.map((e) => e.name).sort(), [...keep].sort());

    // latest on S3 is the real snapshot, byte for byte.
    const out = join(work, "latest.db");
    ok(await runCli(["restore", "latest", "--to", DEST, "--to-file", out], { env: env() }));
    const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    assert.equal(sha(readFileSync(out)), sha(real.bytes));
  });
});
