import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, type Readable, Transform, Writable } from "node:stream";
import { pipeline as pipelinePromise } from "node:stream/promises";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import { budgetedByteCounter } from "../stages/buffer-budget.ts";
import { decompressStage } from "../stages/compress.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { crashAfterBytesRead } from "./crash-point.ts";
import { createWorkFolder } from "./work-folder.ts";

/** Plain snapshots up to this size are held in memory; larger ones go to a private temporary file. */
export const IN_MEMORY_LIMIT = 64 * 1024 * 1024;

/** A plain snapshot (database and trailer) ready to be read: in memory or in a private temporary file. */
export interface MaterializedSnapshot {
  /** The whole snapshot when it was small enough to hold in memory. */
  buffer?: Buffer;
  /** A private (0600, in a 0700 directory) temporary file otherwise; removed by `dispose`. */
  path?: string;
  size: number;
  /**
   * sha256 of the plain snapshot, hex. Always set when the snapshot was decoded (a backup, a zstd or age file),
   * since it is hashed as it streams by; a plain file is read in place and hashed only when asked (`hash`).
   */
  sha256?: string;
  /** What was read, for messages: a path or `<store>/<key>`. */
  label: string;
  /** Removes the temporary file, if any. Safe to call twice. */
  dispose(): Promise<void>;
}

const AGE_MAGIC = Buffer.from("age-encryption.org/v1");
const AGE_ARMOR = Buffer.from("-----BEGIN AGE ENCRYPTED FILE-----");
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/**
 * Fetches a stored backup, decrypts and decompresses it as its name says, into memory or a private temporary
 * file. Unlike a restore, it does not fail on a bad trailer or manifest checksum: `verify` reports those.
 */
export async function materializeBackup(
  store: Store,
  entry: CatalogEntry,
  options: { decrypt?: DecryptionFactory; signal?: AbortSignal },
): Promise<MaterializedSnapshot> {
  if (entry.encrypted && !options.decrypt) {
    throw new Hinted(
      `backup ${entry.key} is encrypted`,
      "pass --identity FILE (or --passphrase-file FILE) to read it",
    );
  }
  const expected =
    entry.manifest?.sizes.plain ?? (entry.object?.size ?? 0) * (entry.compression === "zstd" ? 20 : 1);
  const stages: Transform[] = [
    budgetedByteCounter(crashAfterBytesRead),
    ...(entry.encrypted && options.decrypt ? [options.decrypt()] : []),
    decompressStage(entry.compression),
  ];
  const source = await store.get(entry.key, options.signal ? { signal: options.signal } : {});
  return await collect(source, stages, expected, `${store.location}/${entry.key}`, options.signal);
}

/**
 * Opens a local snapshot file: a plain one is read in place; an age-encrypted one (recognised by its first
 * bytes) is decrypted first, then decompressed when its name has `.zst`; a zstd one is decompressed.
 * A plain file is hashed (`sha256`) only with `hash: true`: `status`, `inspect`, `get`, `diff` do not need it,
 * and reading 1 GB to hash it is most of their time.
 */
export async function materializeFile(
  path: string,
  options: { decrypt?: DecryptionFactory; signal?: AbortSignal; hash?: boolean },
): Promise<MaterializedSnapshot> {
  const head = await readHead(path, 64);
  const encrypted =
    head.subarray(0, AGE_MAGIC.length).equals(AGE_MAGIC) ||
    head.subarray(0, AGE_ARMOR.length).equals(AGE_ARMOR);
  const stages: Transform[] = [];
  if (encrypted) {
    if (!options.decrypt)
      throw new Hinted(`${path} is age-encrypted`, "pass --identity FILE (or --passphrase-file FILE)");
    stages.push(options.decrypt());
  } else if (head.subarray(0, 4).equals(ZSTD_MAGIC)) {
    stages.push(decompressStage("zstd"));
  }
  const { size } = await stat(path);
  if (stages.length === 0) {
    // A plain file: read it where it is (no copy), hashed only when asked.
    const sha256 = options.hash ? await fileSha256(path, options.signal) : undefined;
    return { path, size, ...(sha256 ? { sha256 } : {}), label: path, dispose: async () => {} };
  }
  if (encrypted && /\.zst(\.age)?$/.test(path)) stages.push(decompressStage("zstd"));
  return await collect(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    stages,
    size * 20,
    path,
    options.signal,
  );
}

/** sha256 of a file, hex, streamed. */
export async function fileSha256(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  await pipelinePromise(
    createReadStream(path, { highWaterMark: 1 << 20 }),
    hashSink(hash),
    signal ? { signal } : {},
  );
  return hash.digest("hex");
}

/** The snapshot's sha256: the one computed while materializing, or hashed now (a plain file read in place). */
export async function snapshotSha256(snapshot: MaterializedSnapshot, signal?: AbortSignal): Promise<string> {
  if (snapshot.sha256) return snapshot.sha256;
  const sha256 = snapshot.buffer
    ? createHash("sha256").update(snapshot.buffer).digest("hex")
    : await fileSha256(snapshot.path!, signal);
  snapshot.sha256 = sha256;
  return sha256;
}

async function collect(
  source: Readable,
  stages: Transform[],
  expectedSize: number,
  label: string,
  signal?: AbortSignal,
): Promise<MaterializedSnapshot> {
  const hash = createHash("sha256");
  const stream = pipeline([source, ...stages] as [Readable, ...Transform[]], () => {}) as unknown as Readable;
  if (expectedSize <= IN_MEMORY_LIMIT) {
    const chunks: Buffer[] = [];
    let size = 0;
    await pipelinePromise(
      stream,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          chunks.push(chunk);
          size += chunk.length;
          cb();
        },
      }),
      signal ? { signal } : {},
    );
    return {
      buffer: Buffer.concat(chunks, size),
      size,
      sha256: hash.digest("hex"),
      label,
      dispose: async () => {},
    };
  }
  const work = await createWorkFolder("read");
  const path = join(work.path, "snapshot.db");
  const dispose = () => work.remove();
  try {
    const handle = await open(path, "wx", 0o600);
    const out = createWriteStream("", { fd: handle, highWaterMark: 1 << 20 });
    await pipelinePromise(stream, hashTap(hash), out, signal ? { signal } : {});
    return { path, size: out.bytesWritten, sha256: hash.digest("hex"), label, dispose };
  } catch (err) {
    stream.destroy();
    await dispose();
    throw err;
  }
}

function hashSink(hash: import("node:crypto").Hash): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb();
    },
  });
}

function hashTap(hash: import("node:crypto").Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const handle = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    throw new Hinted(`cannot read ${path}: ${err.code ?? err.message}`, "check the path");
  });
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
