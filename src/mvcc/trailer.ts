import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * etcd's sha256 trailer: `Maintenance.Snapshot` appends the sha256 of the database as the last 32 bytes,
 * and `etcdctl snapshot save` keeps them, so a snapshot file is a whole number of pages plus 32 bytes. A
 * database copied from a data dir (member/snap/db) has no trailer and is a whole number of pages.
 */

export const TRAILER_SIZE = 32;

/** Whether a file of `size` bytes carries a trailer, judging by its size alone. */
export function hasTrailer(size: number): boolean {
  return size % 512 === TRAILER_SIZE && size > TRAILER_SIZE;
}

/** Whether the last 32 bytes of `file` are the sha256 of the rest. */
export function trailerMatches(file: Buffer): boolean {
  const digest = createHash("sha256")
    .update(file.subarray(0, file.length - TRAILER_SIZE))
    .digest();
  return digest.equals(file.subarray(file.length - TRAILER_SIZE));
}

/** `trailerMatches` for the file at `path` of `size` bytes, streamed (memory stays 1 MiB). */
export async function fileTrailerMatches(path: string, size: number, signal?: AbortSignal): Promise<boolean> {
  const hash = createHash("sha256");
  const dataSize = size - TRAILER_SIZE;
  if (dataSize > 0) {
    await pipeline(
      createReadStream(path, { end: dataSize - 1, highWaterMark: 1 << 20 }),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb();
        },
      }),
      signal ? { signal } : {},
    );
  }
  const trailer = Buffer.alloc(TRAILER_SIZE);
  const handle = await open(path, "r");
  try {
    await handle.read(trailer, 0, TRAILER_SIZE, dataSize);
  } finally {
    await handle.close();
  }
  return hash.digest().equals(trailer);
}

/**
 * Proves that a snapshot (in memory, or a file) holds the bytes etcd wrote before anything is read from it:
 * "verified" when its trailer matches, "absent" when it has none (a whole number of pages: nothing can be
 * proven, the caller says so). Throws when the trailer does not match, or when the size is neither (cut short).
 */
export async function proveTrailer(
  snapshot: { buffer?: Buffer; path?: string; size: number },
  signal?: AbortSignal,
): Promise<"verified" | "absent"> {
  const { size } = snapshot;
  if (hasTrailer(size)) {
    const ok = snapshot.buffer
      ? trailerMatches(snapshot.buffer)
      : await fileTrailerMatches(snapshot.path!, size, signal);
    if (!ok) throw new Error("sha256 trailer mismatch: the file changed after etcd wrote it");
    return "verified";
  }
  if (size > 0 && size % 512 === 0) return "absent";
  throw new Error(
    `${size} bytes is neither a whole number of pages nor pages plus etcd's 32-byte sha256 trailer (cut short?)`,
  );
}
