/**
 * The differential check at a size no test runs: a Kubernetes-shaped etcd of --size MB (default 300; the
 * database is generated once by k8s-data.ts and cached in the temp directory), every key compared between
 * what a real etcd serves after `etcdctl snapshot restore` and what our reader returns (MVCC replay, and get's
 * library function, with the file read page by page as `get` reads files, and read whole), plus status
 * against `etcdctl snapshot status`. Reads of a 300 MB file pass every window and cache size many times over.
 *
 *   npm run build && node bench/differential.ts [--size 300] [--page 20000]
 *
 * Prints the number of keys compared, the number differing (must be 0: exit 1 otherwise) and the time each
 * side took to produce every key: etcdctl get (paged JSON) against our reader on the same file.
 */
import { parseArgs } from "node:util";
import { BoltDb } from "../src/bbolt/db.ts";
import { snapshotFileStatus } from "../src/mvcc/status.ts";
import { etcdFromSnapshot } from "../test/fixtures/etcd-restore.ts";
import { etcdctlStatus } from "../test/snapshot/corpus.ts";
import { compareDumps, etcdDump, getDump, replayDump } from "../test/snapshot/differential.ts";
import { k8sSnapshot } from "./k8s-data.ts";

const { values } = parseArgs({
  options: { size: { type: "string", default: "300" }, page: { type: "string", default: "20000" } },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const sizeMB = Number(values.size);
const snapshot = await k8sSnapshot(sizeMB, log);
const { size } = await import("node:fs").then((fs) => fs.statSync(snapshot));
log(`snapshot ${snapshot}: ${(size / 1e6).toFixed(0)} MB`);

const etcd = await etcdFromSnapshot(snapshot, { args: ["--quota-backend-bytes", String(8 * 1024 ** 3)] });
let t = performance.now();
const truth = await (async () => {
  try {
    return await etcdDump(etcd, { pageSize: Number(values.page) });
  } finally {
    await etcd.destroy();
  }
})();
const etcdSeconds = (performance.now() - t) / 1000;
log(
  `etcd served ${truth.keys.size} keys at revision ${truth.revision} (etcdctl get, paged): ${etcdSeconds.toFixed(1)} s`,
);

let failed = false;
const row = (label: string, seconds: number, cmp: ReturnType<typeof compareDumps>) => {
  console.log(
    `${label.padEnd(42)} ${String(cmp.compared).padStart(8)} keys  ${String(cmp.differing).padStart(6)} differing  ${seconds.toFixed(2).padStart(7)} s`,
  );
  if (cmp.differing > 0) {
    failed = true;
    for (const l of cmp.lines) console.log(`  ${l}`);
  }
};
console.log(
  `differential check, ${(size / 1e6).toFixed(0)} MB Kubernetes-shaped snapshot, ${truth.keys.size} live keys`,
);
console.log(
  `${"etcdctl get (restored etcd, paged)".padEnd(42)} ${String(truth.keys.size).padStart(8)} keys  ${"".padStart(17)}  ${etcdSeconds.toFixed(2).padStart(7)} s`,
);

for (const how of ["page by page", "whole"] as const) {
  const db = how === "whole" ? await BoltDb.open(snapshot) : BoltDb.openFile(snapshot);
  try {
    t = performance.now();
    const replay = replayDump(db);
    row(`ours, MVCC replay, ${how}`, (performance.now() - t) / 1000, compareDumps(truth, replay));
    t = performance.now();
    const viaGet = getDump(db, truth.keys.keys(), truth.revision);
    row(`ours, get's library function, ${how}`, (performance.now() - t) / 1000, compareDumps(truth, viaGet));
  } finally {
    db.close();
  }
}
const ours = JSON.stringify(snapshotFileStatus(snapshot));
const theirs = JSON.stringify(await etcdctlStatus(snapshot));
console.log(`status: ours ${ours} ${ours === theirs ? "==" : "!="} etcdctl ${theirs}`);
if (ours !== theirs) failed = true;
process.exitCode = failed ? 1 : 0;
