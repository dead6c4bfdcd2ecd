import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { BoltDb } from "../../src/bbolt/db.ts";
import { checkSnapshot } from "../../src/mvcc/snapshot-check.ts";
import { renderStatus, snapshotFileStatus, snapshotStatus } from "../../src/mvcc/status.ts";
import { StreamingStatus } from "../../src/mvcc/streaming-status.ts";
import { humanizeBytes } from "../../src/render/humanize-bytes.ts";
import { buildCorpus, type CorpusSnapshot, etcdctlStatus } from "../snapshot/corpus.ts";

const run = promisify(execFile);

describe("snapshot status and check on a real etcd corpus", () => {
  let corpus: Awaited<ReturnType<typeof buildCorpus>>;
  before(async () => {
    corpus = await buildCorpus();
  });
  after(async () => {
    await corpus?.cleanup();
  });

  const names = [
    "empty",
    "few-keys",
    "overflow-100kb",
    "after-deletes",
    "with-leases",
    "100k-keys",
    "compacted-defragmented",
    "auth-enabled",
  ];
  const find = (name: string): CorpusSnapshot => {
    const s = corpus.snapshots.find((x) => x.name === name);
    assert.ok(s, `snapshot ${name} was built`);
    return s;
  };

  for (const name of names) {
    test(`${name}: status equals etcdctl snapshot status -w json`, async () => {
      const snap = find(name);
      const ours = renderStatus(snapshotStatus(await BoltDb.open(snap.path)), "json");
      const theirs = await run("/usr/bin/etcdctl", ["snapshot", "status", "-w", "json", snap.path], {
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      assert.equal(ours, theirs.stdout);
      assert.deepEqual(JSON.parse(ours), await etcdctlStatus(snap.path));
      // Read page by page from the file: the same answer.
      assert.equal(renderStatus(snapshotFileStatus(snap.path), "json"), theirs.stdout);
    });

    test(`${name}: status computed while streaming (any chunk size) equals etcdctl's`, async () => {
      const snap = find(name);
      const bytes = await readFile(snap.path);
      const expected = await etcdctlStatus(snap.path);
      for (const chunk of [1 << 20, 4093, 65536 + 7]) {
        const streaming = new StreamingStatus();
        for (let off = 0; off < bytes.length; off += chunk)
          streaming.update(bytes.subarray(off, off + chunk));
        assert.deepEqual(streaming.finish(), expected, `chunk size ${chunk}`);
      }
    });

    test(`${name}: check finds nothing`, async () => {
      const findings = checkSnapshot(await readFile(find(name).path));
      assert.deepEqual(findings, []);
    });
  }

  test("table output equals etcdctl -w table", async () => {
    for (const name of ["few-keys", "100k-keys"]) {
      const snap = find(name);
      const ours = renderStatus(snapshotStatus(await BoltDb.open(snap.path)), "table");
      const theirs = await run("/usr/bin/etcdctl", ["snapshot", "status", "-w", "table", snap.path], {
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      assert.equal(ours, theirs.stdout);
    }
  });

  test("a database read page by page lists the same entries as one read whole", async () => {
    for (const name of ["overflow-100kb", "100k-keys"]) {
      const path = find(name).path;
      const whole = await BoltDb.open(path);
      const paged = BoltDb.openFile(path);
      try {
        const names = (db: BoltDb) => db.buckets().map((b) => b.name.toString("latin1"));
        assert.deepEqual(names(paged), names(whole));
        for (const bucket of whole.buckets()) {
          const other = paged.bucket(bucket.name.toString("latin1"))!;
          assert.deepEqual(paged.entries(other), whole.entries(bucket), `${name} bucket ${bucket.name}`);
        }
      } finally {
        paged.close();
      }
    }
  });
});

describe("humanizeBytes", () => {
  test("matches go-humanize on boundaries and ties", () => {
    const cases: [number, string][] = [
      [0, "0 B"],
      [9, "9 B"],
      [10, "10 B"],
      [999, "999 B"],
      [1000, "1.0 kB"],
      [20480, "20 kB"],
      [21500, "22 kB"],
      [2_100_000, "2.1 MB"],
      [9_950_000, "10 MB"],
      [209_715_200, "210 MB"],
    ];
    for (const [n, want] of cases) assert.equal(humanizeBytes(n), want, String(n));
  });
});
