/**
 * Every read and write of the revision log goes through this module, so that the way objects are claimed in
 * the store (today `put`, which replaces; later a name-claiming `put`) changes in one place.
 *
 * A segment is stored as zstd then age (when encryption is on), like a full backup, and its manifest is
 * written only after the object is complete: a segment without manifest is not closed, and readers ignore it.
 */
import { createHash } from "node:crypto";
import { pipeline, Readable, type Transform } from "node:stream";
import { buffer } from "node:stream/consumers";
import { Hinted } from "../errors.ts";
import { compressStage, decompressStage } from "../stages/compress.ts";
import { ByteCounter } from "../stages/count.ts";
import type { DecryptionFactory, EncryptionPlan } from "../stages/encryption.ts";
import { readSmallObject } from "../store/small-object.ts";
import type { ObjectInfo, Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { SEGMENT_MANIFEST_SUFFIX, segmentKey } from "./names.ts";
import { LOG_FORMAT, type LogObject, parseLogObject, type SegmentManifest } from "./records.ts";
import type { SegmentBuilder } from "./segment-format.ts";

export interface SegmentTarget {
  store: Store;
  cluster: string;
  dir: string;
  base: number;
  encryption: EncryptionPlan | null;
  signal?: AbortSignal;
}

/** Compresses, encrypts and stores a closed segment, then its manifest. Returns the manifest. */
export async function writeSegment(target: SegmentTarget, segment: SegmentBuilder): Promise<SegmentManifest> {
  const { payload, sha256 } = segment.finish();
  const key = segmentKey(
    target.cluster,
    target.base,
    segment.firstRevision,
    segment.lastRevision,
    target.encryption !== null,
    target.dir,
  );
  const stored = new ByteCounter();
  const stages: Transform[] = [
    compressStage("zstd"),
    ...(target.encryption ? [target.encryption.createStage()] : []),
    stored,
  ];
  // pipeline() destroys every stage when one fails, so the store sees the error as its body failing.
  const body = pipeline([Readable.from([payload]), ...stages] as [Readable, ...Transform[]], () => {});
  await target.store.put(key, body as unknown as Readable, {
    ...(target.signal ? { signal: target.signal } : {}),
    contentType: "application/octet-stream",
    immutable: true,
  });
  const manifest: SegmentManifest = {
    format: LOG_FORMAT,
    kind: "log-segment",
    cluster: target.cluster,
    base: target.base,
    firstRevision: segment.firstRevision,
    lastRevision: segment.lastRevision,
    revisions: segment.revisions,
    events: segment.events,
    leaseRecords: segment.leaseRecords,
    firstTime: new Date(segment.firstUnixMs).toISOString(),
    lastTime: new Date(segment.lastUnixMs).toISOString(),
    sha256,
    sizes: { plain: payload.length, stored: stored.bytes },
    compression: { kind: "zstd" },
    encryption: target.encryption
      ? { kind: "age", recipients: target.encryption.recipients }
      : { kind: "none", recipients: [] },
    tool: { name: "etcd-backup", version: VERSION },
  };
  try {
    await writeJson(target.store, `${key}${SEGMENT_MANIFEST_SUFFIX}`, manifest, target.signal, {
      immutable: true,
    });
  } catch (err) {
    await target.store.delete(key).catch(() => {});
    throw err;
  }
  return manifest;
}

/**
 * Writes one of the log's JSON objects (replacing it: heads are overwritten). `immutable` (a segment's manifest,
 * which describes data that never changes) locks it where the store locks backup data; records that are
 * rewritten or removed as the log runs (heads, chain and prune records) are never locked.
 */
export async function writeJson(
  store: Store,
  key: string,
  value: LogObject,
  signal?: AbortSignal,
  options: { immutable?: boolean } = {},
): Promise<void> {
  await store.put(key, Readable.from([Buffer.from(`${JSON.stringify(value, null, 2)}\n`)]), {
    ...(signal ? { signal } : {}),
    contentType: "application/json",
    ...(options.immutable ? { immutable: true } : {}),
  });
}

export async function readJson<K extends LogObject["kind"]>(
  store: Store,
  key: string,
  kind: K,
): Promise<Extract<LogObject, { kind: K }>> {
  return parseLogObject(await readSmallObject(store, key), kind);
}

/**
 * Fetches, decrypts and decompresses a segment and checks the sha256 its manifest names. Throws a `Hinted`
 * error for an encrypted segment without key, and on a hash mismatch.
 */
export async function readSegmentPayload(
  store: Store,
  manifest: SegmentManifest,
  objectKey: string,
  options: { decrypt?: DecryptionFactory | undefined; signal?: AbortSignal | undefined },
): Promise<Buffer> {
  const encrypted = manifest.encryption.kind === "age";
  if (encrypted && !options.decrypt) {
    throw new Hinted(
      `log segment ${objectKey} is encrypted`,
      "pass --identity FILE (or --passphrase-file FILE)",
    );
  }
  const source = await store.get(objectKey, options.signal ? { signal: options.signal } : {});
  const stages: Transform[] = [
    ...(encrypted && options.decrypt ? [options.decrypt()] : []),
    decompressStage("zstd"),
  ];
  let payload: Buffer;
  try {
    const plain = pipeline([source, ...stages] as [Readable, ...Transform[]], () => {});
    payload = await buffer(plain as unknown as Readable);
  } catch (err) {
    throw new Error(`read log segment ${objectKey}`, { cause: err });
  }
  const sha = createHash("sha256").update(payload).digest("hex");
  if (sha !== manifest.sha256) {
    throw new Error(
      `log segment ${objectKey} is damaged: sha256 ${sha} does not match its manifest's ${manifest.sha256}`,
    );
  }
  return payload;
}

/** Every object under the log's root. */
export async function listLogObjects(store: Store, prefix = ""): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

export async function deleteObject(store: Store, key: string): Promise<void> {
  await store.delete(key);
}
