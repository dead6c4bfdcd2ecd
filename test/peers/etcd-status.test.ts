import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, startEtcd } from "../fixtures/etcd-server.ts";
import { type EtcdPeer, type EtcdRelease, etcdPeer } from "../fixtures/peers.ts";
import { putMany } from "../snapshot/corpus.ts";

const run = promisify(execFile);

/**
 * `etcd-backup status --etcd-version R` against `snapshot status` of etcd R itself (etcdutl for 3.6 and
 * 3.5, etcdctl for 3.4), byte for byte in json and table form, on snapshots taken from each release's
 * server after a history with thousands of keys, overwrites, deletes, a lease and a compaction.
 *
 * Differences between the releases found here (etcdutl 3.6.16, 3.5.35, etcdctl 3.4.23):
 * - 3.6 counts live keys as totalKey (bucket `key` replayed, tombstones removing keys); 3.5 and 3.4 count
 *   every entry of every bucket (revisions, tombstones, members, leases, meta...).
 * - 3.6 always prints `"version"` (the snapshot's storage version, "" when it has none) and a VERSION
 *   table column; 3.5 and 3.4 never print it, even for a snapshot that records one.
 * - A 3.6 server's snapshot records storage version "3.6.0" in bucket meta; 3.5 and 3.4 snapshots have none.
 * - hash, revision and totalSize agree between all three tools on every snapshot.
 */

const RELEASES: EtcdRelease[] = ["3.6", "3.5", "3.4"];
const peers = new Map<EtcdRelease, EtcdPeer>();
for (const r of RELEASES) {
  const p = etcdPeer(r);
  if (p) peers.set(r, p);
}

/** The release's own `snapshot status` (etcdutl from 3.5 on, etcdctl on 3.4). */
async function theirStatus(peer: EtcdPeer, path: string, format: "json" | "table"): Promise<string> {
  const tool = peer.etcdutl ?? peer.etcdctl;
  const { stdout } = await run(tool, ["snapshot", "status", "-w", format, path], { env: peer.ctlEnv });
  return stdout;
}

/** A history that makes the counts differ: overwrites, deletes (tombstones), a lease, a compaction. */
async function writeHistory(etcd: EtcdServer): Promise<void> {
  await putMany(etcd, 4000, "/status/key-", (i) => `value-${i}`);
  await putMany(etcd, 1000, "/status/key-", (i) => `second-${i}`);
  await etcd.ctl(["del", "/status/key-0000001"]);
  await etcd.ctl(["del", "/status/key-0000002"]);
  const granted = await etcd.ctl(["lease", "grant", "600"]);
  const lease = /lease ([0-9a-f]+) granted/.exec(granted)?.[1];
  assert.ok(lease, granted);
  await etcd.ctl(["put", "--lease", lease, "/status/leased", "1"]);
  const rev = JSON.parse(await etcd.ctl(["get", "/status/leased", "-w", "json"])).header.revision as number;
  await etcd.ctl(["compact", String(rev - 2)]);
  await putMany(etcd, 500, "/status/later-", (i) => `later-${i}`);
  await etcd.ctl(["del", "--prefix", "/status/later-000001"]);
}

describe("status equals each etcd release's own snapshot status", () => {
  let work: string;
  const snapshots = new Map<EtcdRelease, string>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), "etcd-backup-peer-status-"));
    for (const release of peers.keys()) {
      const etcd = await startEtcd({
        release,
        args: ["--max-txn-ops", "20000", "--max-request-bytes", "10485760"],
      });
      try {
        await writeHistory(etcd);
        const path = join(work, `from-${release}.db`);
        await etcd.ctl(["snapshot", "save", path]);
        snapshots.set(release, path);
      } finally {
        await etcd.destroy();
      }
    }
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const tool of RELEASES) {
    for (const from of RELEASES) {
      const skip = !peers.has(tool) || !peers.has(from) ? `etcd ${tool} or ${from} is not installed` : false;
      test(`a snapshot of etcd ${from}, printed as etcd ${tool} does (json and table)`, {
        skip,
      }, async () => {
        const path = snapshots.get(from)!;
        for (const format of ["json", "table"] as const) {
          const theirs = await theirStatus(peers.get(tool)!, path, format);
          const ours = await runCli(["status", path, "-w", format, "--etcd-version", tool]);
          assertOk(ours);
          assert.equal(ours.stdout, theirs, `${format} of ${from}'s snapshot as ${tool}`);
        }
      });
    }
  }

  test("the releases differ as documented above", {
    skip: peers.size < 3 && "needs 3.6, 3.5, 3.4",
  }, async () => {
    const path = snapshots.get("3.6")!;
    const as36 = JSON.parse(await theirStatus(peers.get("3.6")!, path, "json"));
    const as35 = JSON.parse(await theirStatus(peers.get("3.5")!, path, "json"));
    const as34 = JSON.parse(await theirStatus(peers.get("3.4")!, path, "json"));
    assert.equal(as36.version, "3.6.0");
    assert.equal("version" in as35, false);
    assert.deepEqual(as35, as34);
    // Live keys: 4000 written, 2 deleted, 1 leased, 500 later of which 10 deleted (later-0000010 to 19).
    assert.equal(as36.totalKey, 4000 - 2 + 1 + 500 - 10);
    assert.ok(as35.totalKey > as36.totalKey, "3.5 counts every entry, history included");
    for (const f of ["hash", "revision", "totalSize"]) assert.equal(as36[f], as35[f], f);
    const from35 = JSON.parse(await theirStatus(peers.get("3.6")!, snapshots.get("3.5")!, "json"));
    assert.equal(from35.version, "", "a 3.5 snapshot has no storage version");
  });
});
