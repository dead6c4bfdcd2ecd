/**
 * A Kubernetes-shaped etcd for the benchmarks, built in a real etcd through gRPC KV.Txn batches and cached
 * as a snapshot file in the temp directory (keyed by size and generator version), so repeated runs only pay
 * for `etcdctl snapshot restore`.
 *
 * The mix, by bytes, roughly as a busy cluster's etcd looks:
 * - many small protobuf objects (`k8s\0` + runtime.Unknown) of 1-3 KB: pods, events, endpointslices, leases;
 * - JSON CustomResourceDefinitions of 20-200 KB (OpenAPI schemas: repetitive text);
 * - ConfigMaps of 50-900 KB (config text) and Secrets of 50-900 KB (base64 of random bytes: certificates,
 *   tokens; barely compressible);
 * - custom resources (JSON, 1-5 KB);
 * then a fifth of the small keys rewritten three times (status updates, lease renewals) and a compaction that
 * keeps the last round of history, as the apiserver's periodic compaction does.
 * Values come from a seeded generator: the same size gives the same database.
 */
import { existsSync } from "node:fs";
import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, credentials } from "@grpc/grpc-js";
import { MessageWriter, readFields } from "../src/protobuf/wire.ts";
import { headerRevision, putOp, txnRequest, unary } from "../test/fixtures/etcd-kv.ts";
import { etcdFromSnapshot as restoredEtcd } from "../test/fixtures/etcd-restore.ts";
import { type EtcdServer, startEtcd } from "../test/fixtures/etcd-server.ts";

const MiB = 1024 * 1024;
/** Bumped when the generated data changes, so stale caches are not reused. */
const GENERATOR_VERSION = 1;
const ETCD_ARGS = ["--max-txn-ops", "100000", "--max-request-bytes", String(16 * MiB)];
const QUOTA = 8 * 1024 * MiB;

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "app kubernetes io name instance component part-of managed-by version controller revision hash pod template " +
  "generation node default kube-system monitoring ingress nginx prometheus grafana redis postgres api web worker " +
  "frontend backend cache queue scheduler metrics server coredns calico cilium envoy istio proxy sidecar init " +
  "container image registry docker io library alpine debian latest stable ready running pending succeeded true " +
  "false status conditions lastTransitionTime type reason message ContainersReady PodScheduled Initialized " +
  "resources requests limits cpu memory ephemeral-storage volumeMounts mountPath readOnly serviceAccountName " +
  "terminationGracePeriodSeconds dnsPolicy ClusterFirst restartPolicy Always schedulerName default-scheduler " +
  "tolerations key operator Exists effect NoExecute tolerationSeconds priority enableServiceLinks preemptionPolicy"
).split(" ");

class Gen {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = rng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  word(): string {
    return WORDS[Math.floor(this.next() * WORDS.length)]!;
  }
  hex(n: number): string {
    let s = "";
    while (s.length < n)
      s += Math.floor(this.next() * 0x100000000)
        .toString(16)
        .padStart(8, "0");
    return s.slice(0, n);
  }
  uid(): string {
    return `${this.hex(8)}-${this.hex(4)}-${this.hex(4)}-${this.hex(4)}-${this.hex(12)}`;
  }
  time(): string {
    return new Date(1_700_000_000_000 + this.int(0, 90 * 86_400) * 1000).toISOString().replace(".000", "");
  }
  /** Config-file-like text: keys, words, numbers and the odd random id. */
  text(bytes: number): string {
    const lines: string[] = [];
    let n = 0;
    while (n < bytes) {
      const indent = "  ".repeat(this.int(0, 3));
      const line = `${indent}${this.word()}_${this.word()}: ${
        this.next() < 0.3 ? this.hex(this.int(8, 32)) : `${this.word()}-${this.int(0, 9999)}`
      }`;
      lines.push(line);
      n += line.length + 1;
    }
    return lines.join("\n");
  }
  /** Base64 of random bytes: certificates, keys, tokens. */
  b64(bytes: number): string {
    const raw = Buffer.allocUnsafe(Math.ceil((bytes * 3) / 16) * 4);
    for (let i = 0; i < raw.length; i += 4) raw.writeUInt32LE(Math.floor(this.next() * 0x100000000), i);
    return raw.toString("base64").slice(0, bytes);
  }
}

function metadata(g: Gen, ns: string, name: string): Record<string, unknown> {
  return {
    name,
    namespace: ns,
    uid: g.uid(),
    resourceVersion: String(g.int(1000, 99_999_999)),
    creationTimestamp: g.time(),
    labels: { "app.kubernetes.io/name": g.word(), "app.kubernetes.io/instance": `${g.word()}-${g.hex(5)}` },
    annotations: { "kubectl.kubernetes.io/last-applied-configuration": g.text(g.int(50, 400)) },
  };
}

/** `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding, contentType}. */
function protobufValue(
  g: Gen,
  apiVersion: string,
  kind: string,
  ns: string,
  name: string,
  size: number,
): Buffer {
  const fields = new MessageWriter();
  // The raw object: length-delimited strings as a generated protobuf object has (names, labels, images, times).
  const raw = new MessageWriter();
  raw.bytes(1, new MessageWriter().bytes(1, name).bytes(3, ns).bytes(4, g.uid()).bytes(6, g.time()).finish());
  let n = 200;
  let field = 2;
  while (n < size) {
    const s =
      g.next() < 0.25
        ? g.hex(g.int(8, 40))
        : `${g.word()}-${g.word()}.${g.word()}/${g.word()}:${g.int(0, 99)}`;
    raw.bytes(field, s);
    field = field === 15 ? 2 : field + 1;
    n += s.length + 2;
  }
  fields.bytes(1, new MessageWriter().bytes(1, apiVersion).bytes(2, kind).finish());
  fields.bytes(2, raw.finish());
  return Buffer.concat([Buffer.from("k8s\0", "latin1"), fields.finish()]);
}

function jsonValue(obj: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(obj));
}

type Kv = [key: string, value: Buffer];

/** The small objects that get rewritten; returns the key and a new value each call. */
function smallObject(g: Gen, i: number): Kv {
  const ns = `ns-${i % 40}`;
  const r = i % 10;
  if (r < 4) {
    const name = `pod-${g.hex(6)}-${i}`;
    return [`/registry/pods/${ns}/${name}`, protobufValue(g, "v1", "Pod", ns, name, g.int(1800, 3500))];
  }
  if (r < 6) {
    const name = `ev-${i}.${g.hex(16)}`;
    return [`/registry/events/${ns}/${name}`, protobufValue(g, "v1", "Event", ns, name, g.int(700, 1200))];
  }
  if (r < 8) {
    const name = `svc-${i}-${g.hex(5)}`;
    return [
      `/registry/endpointslices/${ns}/${name}`,
      protobufValue(g, "discovery.k8s.io/v1", "EndpointSlice", ns, name, g.int(900, 2500)),
    ];
  }
  if (r < 9) {
    const name = `lease-${i}`;
    return [
      `/registry/leases/${ns}/${name}`,
      protobufValue(g, "coordination.k8s.io/v1", "Lease", ns, name, g.int(300, 500)),
    ];
  }
  const name = `cr-${i}`;
  return [
    `/registry/example.com/widgets/${ns}/${name}`,
    jsonValue({
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: metadata(g, ns, name),
      spec: { text: g.text(g.int(500, 3500)) },
    }),
  ];
}

function largeObject(g: Gen, i: number): Kv {
  const ns = `ns-${i % 40}`;
  const r = i % 5;
  if (r < 2) {
    const name = `config-${i}`;
    const data: Record<string, string> = {};
    const size = g.int(50_000, 900_000);
    for (let k = 0, n = 0; n < size; k++) {
      const s = g.text(Math.min(64_000, size - n));
      data[`file-${k}.yaml`] = s;
      n += s.length;
    }
    return [
      `/registry/configmaps/${ns}/${name}`,
      jsonValue({ apiVersion: "v1", kind: "ConfigMap", metadata: metadata(g, ns, name), data }),
    ];
  }
  if (r < 4) {
    const name = `secret-${i}`;
    return [
      `/registry/secrets/${ns}/${name}`,
      jsonValue({
        apiVersion: "v1",
        kind: "Secret",
        metadata: metadata(g, ns, name),
        type: "Opaque",
        data: { "tls.crt": g.b64(g.int(25_000, 450_000)), "tls.key": g.b64(g.int(25_000, 450_000)) },
      }),
    ];
  }
  const name = `${g.word()}s${i}.example.com`;
  const props: Record<string, unknown> = {};
  const size = g.int(20_000, 200_000);
  for (let n = 0; n < size; ) {
    const key = `${g.word()}${g.word()[0]!.toUpperCase()}${g.word().slice(1)}`;
    const p = {
      description: `${g.text(g.int(40, 200)).replace(/\n/g, " ")}`,
      type: g.next() < 0.5 ? "string" : "object",
      "x-kubernetes-preserve-unknown-fields": g.next() < 0.2,
    };
    props[key] = p;
    n += key.length + JSON.stringify(p).length;
  }
  return [
    `/registry/apiextensions.k8s.io/customresourcedefinitions/${name}`,
    jsonValue({
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name, uid: g.uid(), creationTimestamp: g.time() },
      spec: {
        group: "example.com",
        names: { kind: g.word(), plural: `${g.word()}s` },
        scope: "Namespaced",
        versions: [
          { name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { properties: props } } },
        ],
      },
    }),
  ];
}

/** One transaction putting every key/value of `kvs`. */
function txn(kvs: Kv[]): Buffer {
  return txnRequest(kvs.map(([key, value]) => putOp({ key, value })));
}

async function dbSize(client: Client): Promise<number> {
  // StatusResponse{dbSize=3}
  const res = await unary(client, "/etcdserverpb.Maintenance/Status", Buffer.alloc(0));
  for (const f of readFields(res)) if (f.field === 3) return Number(f.int);
  return 0;
}

/**
 * The large-value shape (issue 22: a real etcd 3.4 whose values are mostly ~40 KB): ConfigMaps of config text
 * and Secrets of base64 (certificates, keys) of 20-60 KB each, so most bytes sit on bbolt overflow pages, with
 * a few small leases and events between them; a fifth of the ConfigMaps and Secrets rewritten once (history)
 * and a compaction before the rewrite, as the apiserver's periodic compaction leaves it.
 */
function largeValueObject(g: Gen, i: number): Kv {
  const ns = `ns-${i % 40}`;
  const r = i % 20;
  if (r < 9) {
    const name = `config-${i}`;
    return [
      `/registry/configmaps/${ns}/${name}`,
      jsonValue({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: metadata(g, ns, name),
        data: { "config.yaml": g.text(g.int(20_000, 60_000)) },
      }),
    ];
  }
  if (r < 18) {
    const name = `secret-${i}`;
    return [
      `/registry/secrets/${ns}/${name}`,
      jsonValue({
        apiVersion: "v1",
        kind: "Secret",
        metadata: metadata(g, ns, name),
        type: "kubernetes.io/tls",
        data: { "tls.crt": g.b64(g.int(10_000, 30_000)), "tls.key": g.b64(g.int(10_000, 30_000)) },
      }),
    ];
  }
  return smallObject(g, i);
}

/** Fills `etcd` with the large-value shape until its db reaches `sizeMB` MB; returns the key count. */
async function fillLargeValues(etcd: EtcdServer, sizeMB: number, log: (s: string) => void): Promise<number> {
  const client = new Client(etcd.endpoint.replace(/^http:\/\//, ""), credentials.createInsecure(), {
    "grpc.max_send_message_length": 32 * MiB,
  });
  const g = new Gen(sizeMB * 104_729 + GENERATOR_VERSION);
  const target = sizeMB * 1e6;
  const keys: string[] = [];
  try {
    const round = async (kvs: Kv[]) => {
      for (let i = 0; i < kvs.length; i += 200 * 4) {
        await Promise.all(
          [0, 1, 2, 3].map((k) => {
            const batch = kvs.slice(i + k * 200, i + (k + 1) * 200);
            return batch.length ? unary(client, "/etcdserverpb.KV/Txn", txn(batch)) : Promise.resolve();
          }),
        );
      }
    };
    let compactAt = 0n;
    let rewritten = false;
    for (;;) {
      const size = await dbSize(client);
      log(`generating (large values): ${keys.length} objects, db ${(size / 1e6).toFixed(0)} of ${sizeMB} MB`);
      if (size >= target) break;
      if (!rewritten && size >= target * 0.8) {
        // History: a fifth of the objects rewritten once, after a compaction that keeps it.
        const res = await unary(
          client,
          "/etcdserverpb.KV/Txn",
          txn([["/registry/marker", Buffer.from("x")]]),
        );
        compactAt = headerRevision(res);
        const kvs: Kv[] = [];
        for (let i = 0; i < keys.length; i += 5) kvs.push([keys[i]!, largeValueObject(g, i)[1]]);
        await round(kvs);
        rewritten = true;
        continue;
      }
      const kvs: Kv[] = [];
      for (let n = 0; n < 800; n++) {
        const kv = largeValueObject(g, keys.length);
        keys.push(kv[0]);
        kvs.push(kv);
      }
      await round(kvs);
    }
    if (compactAt > 0n)
      await unary(
        client,
        "/etcdserverpb.KV/Compact",
        new MessageWriter().varint(1, compactAt).varint(2, true).finish(),
      );
    return keys.length;
  } finally {
    client.close();
  }
}

/** Fills `etcd` until its db reaches `sizeMB` MB, with history and a compaction; returns the key count. */
async function fill(etcd: EtcdServer, sizeMB: number, log: (s: string) => void): Promise<number> {
  const client = new Client(etcd.endpoint.replace(/^http:\/\//, ""), credentials.createInsecure(), {
    "grpc.max_send_message_length": 32 * MiB,
  });
  const g = new Gen(sizeMB * 7919 + GENERATOR_VERSION);
  const target = sizeMB * 1e6;
  const smallKeys: string[] = [];
  let large = 0;
  let rev = 0n;
  const send = async (batches: Kv[][]) => {
    for (let i = 0; i < batches.length; i += 4) {
      const res = await Promise.all(
        batches.slice(i, i + 4).map((b) => unary(client, "/etcdserverpb.KV/Txn", txn(b))),
      );
      for (const r of res) {
        const v = headerRevision(r);
        if (v > rev) rev = v;
      }
    }
  };
  const batchUp = (kvs: Kv[]) => {
    const out: Kv[][] = [];
    let cur: Kv[] = [];
    let bytes = 0;
    for (const kv of kvs) {
      cur.push(kv);
      bytes += kv[1].length + kv[0].length;
      if (bytes > 3 * MiB) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length) out.push(cur);
    return out;
  };
  try {
    // Rounds of new objects (about half the bytes in small objects, half in large ones) until the db is about
    // 55% of the target; history and more small objects fill the rest.
    for (;;) {
      const size = await dbSize(client);
      log(`generating: ${smallKeys.length + large} objects, db ${(size / 1e6).toFixed(0)} of ${sizeMB} MB`);
      if (size >= target * 0.55) break;
      const kvs: Kv[] = [];
      let bytes = 0;
      while (bytes < Math.max(2e6, target / 20)) {
        const isSmall = g.next() < 0.995;
        const kv = isSmall ? smallObject(g, smallKeys.length) : largeObject(g, large++);
        if (isSmall) smallKeys.push(kv[0]);
        kvs.push(kv);
        bytes += kv[1].length;
      }
      await send(batchUp(kvs));
    }
    // History: a fifth of the small keys rewritten three times (pod status, leases, endpoint churn).
    let compactAt = 0n;
    for (let round = 0; round < 3; round++) {
      const kvs: Kv[] = [];
      for (let i = round; i < smallKeys.length; i += 5) kvs.push([smallKeys[i]!, smallObject(g, i)[1]]);
      await send(batchUp(kvs));
      if (round === 1) compactAt = rev;
      log(`generating: history round ${round + 1}/3, revision ${rev}`);
    }
    while ((await dbSize(client)) < target) {
      const kvs: Kv[] = [];
      for (let i = 0; i < 2000; i++) {
        const kv = smallObject(g, smallKeys.length);
        smallKeys.push(kv[0]);
        kvs.push(kv);
      }
      await send(batchUp(kvs));
    }
    // CompactionRequest{revision=1, physical=2}: keeps the last round as history.
    await unary(
      client,
      "/etcdserverpb.KV/Compact",
      new MessageWriter().varint(1, compactAt).varint(2, true).finish(),
    );
    log(
      `generating: compacted at ${compactAt}, revision ${rev}, db ${((await dbSize(client)) / 1e6).toFixed(0)} MB`,
    );
    return smallKeys.length + large;
  } finally {
    client.close();
  }
}

/** The database shapes the benchmarks run on. */
export type Shape = "k8s" | "large-values";
export const SHAPES: readonly Shape[] = ["k8s", "large-values"];

/** Path of the cached snapshot for `sizeMB`, generating it (a few seconds per 100 MB) when missing. */
export async function k8sSnapshot(sizeMB: number, log: (s: string) => void): Promise<string> {
  return await benchSnapshot("k8s", sizeMB, log);
}

/** Path of the cached snapshot of `shape` for `sizeMB`, generating it when missing. */
export async function benchSnapshot(shape: Shape, sizeMB: number, log: (s: string) => void): Promise<string> {
  const path = join(tmpdir(), `etcd-backup-bench-${shape}-v${GENERATOR_VERSION}-${sizeMB}MB.db`);
  if (existsSync(path)) return path;
  const etcd = await startEtcd({ args: ETCD_ARGS, quotaBytes: QUOTA });
  try {
    await (shape === "k8s" ? fill(etcd, sizeMB, log) : fillLargeValues(etcd, sizeMB, log));
    await etcd.ctl(["snapshot", "save", `${path}.tmp`]);
    await rename(`${path}.tmp`, path);
  } finally {
    await etcd.destroy();
  }
  return path;
}

/** A running etcd holding the snapshot's data (restored with etcdctl into a fresh data dir). */
export async function etcdFromSnapshot(snapshot: string): Promise<EtcdServer> {
  return await restoredEtcd(snapshot, { args: ETCD_ARGS, quotaBytes: QUOTA });
}
