/**
 * The differential harness: what a real etcd serves from a snapshot, against what our reader reads from it,
 * on every key. The truth is taken the way a user would check by hand: `etcdctl snapshot restore` into a
 * fresh data dir, a real etcd started on it, and `etcdctl get "" --prefix -w json` (keys, values, create and
 * mod revision, version, lease). Our side goes through the library functions of `get -o raw` (getObjects,
 * renderObject), `inspect`, `diff` and `status`, on the database read whole and read page by page.
 */
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { BoltDb } from "../../src/bbolt/db.ts";
import { parseKubernetesKey } from "../../src/kubernetes/key.ts";
import { mvccState } from "../../src/mvcc/key-values.ts";
import { getObjects, renderObject } from "../../src/snapshot/get.ts";
import { EtcdKv, type Put } from "../fixtures/etcd-kv.ts";
import { etcdFromSnapshot } from "../fixtures/etcd-restore.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";
import type { SeededRandom } from "../fixtures/seeded-random.ts";

const run = promisify(execFile);

/** One live key as etcd serves it. Keys of a Dump are latin1 strings of the key bytes. */
export interface DumpedKey {
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease ID in decimal ("0" for none): int64 IDs exceed JavaScript's exact integers. */
  lease: string;
}

export interface Dump {
  revision: number;
  keys: Map<string, DumpedKey>;
}

interface EtcdctlRange {
  header: { revision: number };
  kvs?: {
    key: string;
    value?: string;
    create_revision: number;
    mod_revision: number;
    version: number;
    lease?: string;
  }[];
  more?: boolean;
}

async function etcdctlGet(etcd: EtcdServer, args: string[]): Promise<EtcdctlRange> {
  const { stdout } = await run("/usr/bin/etcdctl", [...etcd.ctlArgs, "get", ...args, "-w", "json"], {
    env: { ...process.env, ETCDCTL_API: "3" },
    maxBuffer: 1 << 30,
  });
  // Lease IDs are int64: keep them exact by reading them as strings.
  return JSON.parse(stdout.replace(/"lease":(-?\d+)/g, '"lease":"$1"')) as EtcdctlRange;
}

/**
 * Every live key of a running etcd, through `etcdctl get "" --prefix -w json`; with `pageSize`, in pages of
 * that many keys (`--from-key --limit`, all at the first page's revision), so databases of hundreds of MB
 * stay within what one JSON document and one string can hold. Paging names keys on etcdctl's command line,
 * so it needs UTF-8 keys without NUL bytes.
 */
export async function etcdDump(
  etcd: EtcdServer,
  options: { pageSize?: number; rev?: number } = {},
): Promise<Dump> {
  const keys = new Map<string, DumpedKey>();
  const add = (page: EtcdctlRange, skipFirst: boolean) => {
    for (const [i, kv] of (page.kvs ?? []).entries()) {
      if (skipFirst && i === 0) continue;
      keys.set(Buffer.from(kv.key, "base64").toString("latin1"), {
        value: Buffer.from(kv.value ?? "", "base64"),
        createRevision: kv.create_revision,
        modRevision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease ?? "0",
      });
    }
  };
  if (!options.pageSize) {
    // With `rev`: the keyspace as it was at that revision (`etcdctl get --prefix "" --rev N`).
    const all = await etcdctlGet(etcd, ["", "--prefix", ...(options.rev ? [`--rev=${options.rev}`] : [])]);
    add(all, false);
    return { revision: options.rev ?? all.header.revision, keys };
  }
  const first = await etcdctlGet(etcd, ["", "--from-key", "--limit", String(options.pageSize)]);
  add(first, false);
  const revision = first.header.revision;
  let page = first;
  while (page.more && page.kvs && page.kvs.length > 0) {
    // The next page starts at the last key seen (etcdctl cannot take "last key + NUL"): skip it.
    const last = Buffer.from(page.kvs[page.kvs.length - 1]!.key, "base64").toString("utf8");
    page = await etcdctlGet(etcd, [
      last,
      "--from-key",
      "--limit",
      String(options.pageSize + 1),
      `--rev=${revision}`,
    ]);
    add(page, true);
  }
  return { revision, keys };
}

/** What a real etcd serves after restoring `snapshot`. */
export async function snapshotTruth(snapshot: string, options: { pageSize?: number } = {}): Promise<Dump> {
  const etcd = await etcdFromSnapshot(snapshot);
  try {
    return await etcdDump(etcd, options);
  } finally {
    await etcd.destroy();
  }
}

/** What the MVCC replay (behind inspect and diff) holds for every live key. */
export function replayDump(db: BoltDb): Dump {
  const state = mvccState(db);
  const keys = new Map<string, DumpedKey>();
  for (const [name, kv] of state.keys) {
    keys.set(name, {
      value: kv.value,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease.toString(),
    });
  }
  return { revision: state.revision, keys };
}

/**
 * What `get -o raw` returns for each of `names` (latin1 key strings), through its library functions
 * (getObjects, then renderObject as raw), in one pass over the database. Keys that are not valid UTF-8
 * cannot be named on get's command line and are left out (the replay covers them).
 */
export function getDump(db: BoltDb, names: Iterable<string>, revision: number): Dump {
  const asKeys = new Map<string, string>();
  for (const name of names) {
    const key = Buffer.from(name, "latin1").toString("utf8");
    if (Buffer.from(key, "utf8").toString("latin1") === name) asKeys.set(key, name);
  }
  const keys = new Map<string, DumpedKey>();
  for (const [key, found] of getObjects(db, [...asKeys.keys()])) {
    keys.set(asKeys.get(key)!, {
      value: renderObject(found, "raw") as Buffer,
      createRevision: found.createRevision,
      modRevision: found.modRevision,
      version: found.version,
      lease: found.lease,
    });
  }
  return { revision, keys };
}

/** The differences between two dumps, one line each (at most `limit`), and how many keys were compared. */
export function compareDumps(
  expected: Dump,
  actual: Dump,
  limit = 20,
): { compared: number; differing: number; lines: string[] } {
  const lines: string[] = [];
  let differing = 0;
  const note = (s: string) => {
    differing++;
    if (lines.length < limit) lines.push(s);
  };
  if (expected.revision !== actual.revision)
    lines.push(`revision: etcd ${expected.revision}, reader ${actual.revision}`);
  for (const [name, e] of expected.keys) {
    const a = actual.keys.get(name);
    const key = JSON.stringify(Buffer.from(name, "latin1").toString("utf8"));
    if (!a) {
      note(`${key}: missing in the reader`);
      continue;
    }
    const fields: string[] = [];
    if (!a.value.equals(e.value))
      fields.push(`value (${e.value.length} bytes from etcd, ${a.value.length} from the reader)`);
    if (a.createRevision !== e.createRevision)
      fields.push(`create_revision ${e.createRevision} != ${a.createRevision}`);
    if (a.modRevision !== e.modRevision) fields.push(`mod_revision ${e.modRevision} != ${a.modRevision}`);
    if (a.version !== e.version) fields.push(`version ${e.version} != ${a.version}`);
    if (a.lease !== e.lease) fields.push(`lease ${e.lease} != ${a.lease}`);
    if (fields.length > 0) note(`${key}: ${fields.join(", ")}`);
  }
  for (const name of actual.keys.keys())
    if (!expected.keys.has(name))
      note(
        `${JSON.stringify(Buffer.from(name, "latin1").toString("utf8"))}: in the reader, not served by etcd`,
      );
  return { compared: expected.keys.size, differing, lines };
}

/** Counts and value bytes per resource and namespace, as inspect should report them, from a dump. */
export function expectedInspect(dump: Dump): {
  keys: number;
  bytes: number;
  attachedKeys: number;
  resources: Map<string, { count: number; bytes: number }>;
  namespaces: Map<string, { count: number; bytes: number }>;
  outside: { count: number; bytes: number };
} {
  const resources = new Map<string, { count: number; bytes: number }>();
  const namespaces = new Map<string, { count: number; bytes: number }>();
  const outside = { count: 0, bytes: 0 };
  let bytes = 0;
  let attachedKeys = 0;
  const add = (map: Map<string, { count: number; bytes: number }>, name: string, size: number) => {
    const t = map.get(name) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += size;
    map.set(name, t);
  };
  for (const [name, kv] of dump.keys) {
    const size = kv.value.length;
    bytes += size;
    if (kv.lease !== "0") attachedKeys++;
    const k8s = parseKubernetesKey(Buffer.from(name, "latin1").toString("utf8"));
    if (k8s) {
      add(resources, k8s.resource, size);
      add(namespaces, k8s.namespace, size);
    } else {
      outside.count++;
      outside.bytes += size;
    }
  }
  return { keys: dump.keys.size, bytes, attachedKeys, resources, namespaces, outside };
}

/** The keys whose value, mod revision or create revision differ between two dumps, as diff names them. */
export function expectedChanges(from: Dump, to: Dump): { key: string; change: string }[] {
  const names = new Set([...from.keys.keys(), ...to.keys.keys()]);
  const out: { key: string; change: string }[] = [];
  for (const name of [...names].sort()) {
    const x = from.keys.get(name);
    const y = to.keys.get(name);
    const key = Buffer.from(name, "latin1").toString("utf8");
    if (!x) out.push({ key, change: "added" });
    else if (!y) out.push({ key, change: "removed" });
    else if (
      x.modRevision !== y.modRevision ||
      x.createRevision !== y.createRevision ||
      !x.value.equals(y.value)
    )
      out.push({ key, change: "modified" });
  }
  return out;
}

/** Reads `path` both ways our commands do: whole in memory, and page by page through the window cache. */
export async function bothWays<T>(path: string, read: (db: BoltDb, how: string) => T): Promise<T[]> {
  const whole = await BoltDb.open(path);
  const paged = BoltDb.openFile(path);
  try {
    return [read(whole, "read whole"), read(paged, "read page by page")];
  } finally {
    paged.close();
  }
}

/**
 * Value sizes that sit on the reader's boundaries: empty, page size (4096) and its neighbours, several
 * pages, the window size (256 KiB) and its neighbours, and 1 MiB (overflow chains of 256 pages).
 */
export const BOUNDARY_SIZES = [
  0, 1, 2, 15, 16, 17, 100, 4000, 4063, 4064, 4065, 4080, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 65535,
  65536, 65537, 131072, 262143, 262144, 262145, 300000, 524288, 1048576,
];

/** A value of `size` bytes: Kubernetes-like JSON text, repeated text, or random bytes. */
export function sampleValue(rng: SeededRandom, size: number, label: string): Buffer {
  const kind = rng.int(0, 2);
  if (kind === 2) return rng.bytes(size);
  const text =
    kind === 0
      ? `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"${label}"},"data":{"k":"`
      : `${label}:`;
  const out = Buffer.alloc(size, kind === 0 ? "x" : label.slice(-1) || "v");
  Buffer.from(text).copy(out, 0, 0, Math.min(size, text.length));
  for (let i = text.length; i < size; i += 97) out[i] = 0x61 + ((i / 97 + rng.int(0, 25)) % 26);
  return out;
}

/** A snapshot built by the harness, with the truth etcd serves from it. */
export interface ShapedSnapshot {
  name: string;
  path: string;
  truth: Dump;
}

/** Saves the etcd's current state with `etcdctl snapshot save` into `dir/name.db`. */
export async function saveSnapshot(etcd: EtcdServer, dir: string, name: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.db`);
  await etcd.ctl(["snapshot", "save", path]);
  return path;
}

/**
 * Writes one "shape" of data into `etcd` and returns a description of it: `keys` live keys with values of
 * `sizes()`, some under Kubernetes-like names, leases on some, deletions and rewrites.
 */
export async function writeShape(
  etcd: EtcdServer,
  rng: SeededRandom,
  options: { keys: number; size: () => number; leases?: number; rewrites?: number; deletes?: number },
): Promise<void> {
  const kv = new EtcdKv(etcd.endpoint);
  try {
    const leaseIds: bigint[] = [];
    for (let i = 0; i < (options.leases ?? 0); i++) leaseIds.push(await kv.leaseGrant(3600 + i));
    const resources = ["pods", "configmaps", "secrets", "apps/deployments", "example.com/widgets", "events"];
    const names: string[] = [];
    const puts: Put[] = [];
    for (let i = 0; i < options.keys; i++) {
      const resource = resources[i % resources.length]!;
      const group = resource.includes("/") ? `${resource.split("/")[0]}/` : "";
      const plain = resource.includes("/") ? resource.split("/")[1]! : resource;
      const key =
        i % 17 === 0
          ? `/other/${i.toString(36)}`
          : `/registry/${group}${plain}/ns${i % 7}/obj-${String(i).padStart(6, "0")}`;
      names.push(key);
      const lease = leaseIds.length > 0 && i % 11 === 0 ? rng.pick(leaseIds) : undefined;
      puts.push({ key, value: sampleValue(rng, options.size(), key), ...(lease ? { lease } : {}) });
    }
    await kv.putAll(puts);
    // Rewrite some keys many times with changing sizes (history the replay must resolve to the latest).
    for (let round = 0; round < (options.rewrites ?? 0); round++) {
      // One transaction may not name a key twice: pick distinct keys per round.
      const picked = new Set<string>();
      for (let j = 0; j < Math.max(1, options.keys / 50); j++) picked.add(rng.pick(names));
      await kv.putAll(
        [...picked].map((key) => ({ key, value: sampleValue(rng, options.size(), `${key}#${round}`) })),
      );
    }
    for (let j = 0; j < (options.deletes ?? 0); j++) await kv.delete(names[rng.int(0, names.length - 1)]!);
  } finally {
    kv.close();
  }
}

/** Writes a text report of a comparison next to the snapshots, for a human to read after a failure. */
export async function writeReport(dir: string, name: string, lines: string[]): Promise<void> {
  await writeFile(join(dir, `${name}.differences.txt`), `${lines.join("\n")}\n`);
}
