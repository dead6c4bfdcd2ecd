import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Hinted } from "../errors.ts";
import type { SnapshotOrigin, SnapshotSource } from "../source/source.ts";
import { budgetedByteCounter } from "../stages/buffer-budget.ts";
import { Coalesce } from "../stages/coalesce.ts";
import { TrailerCheck, type TrailerResult } from "../stages/trailer.ts";

export interface PlainSnapshotOptions {
  source: SnapshotSource;
  /** A file path, or `-` for stdout. */
  out: string;
  signal?: AbortSignal;
  onProgress?: (bytes: number, expected: number | undefined) => void;
  /** Where `-` writes (tests); default process.stdout. */
  stdout?: Writable;
}

export interface PlainSnapshotResult {
  trailer: TrailerResult;
  bytes: number;
  origin: SnapshotOrigin;
  /** The file written, absolute; "-" for stdout. */
  path: string;
}

/**
 * Writes a snapshot as `etcdctl snapshot save` does: etcd's bytes with their sha256 trailer, nothing added (what
 * `save --out` and ocne's `cluster backup --out` produce). The trailer is checked on the way, so a file is only
 * ever complete and correct: it is written under a temporary name beside the target (mode 0600: it holds every
 * Secret of the cluster) and renamed into place after the check; on any failure the temporary file is removed.
 * On stdout the last 32 bytes (the trailer) are only written once they matched.
 */
export async function savePlainSnapshot(options: PlainSnapshotOptions): Promise<PlainSnapshotResult> {
  const snapshot = await options.source.open(options.signal);
  const trailer = new TrailerCheck();
  const counter = budgetedByteCounter((n) => options.onProgress?.(n, snapshot.expectedSize));
  const signalOption = options.signal ? { signal: options.signal } : {};
  if (options.out === "-") {
    const stdout = options.stdout ?? process.stdout;
    await pipeline(snapshot.stream, new Coalesce(), trailer, counter, stdout, {
      ...signalOption,
      end: false,
    });
    return { trailer: trailer.result!, bytes: counter.bytes, origin: snapshot.origin, path: "-" };
  }
  const path = resolve(options.out);
  const temp = join(dirname(path), `.${randomBytes(4).toString("hex")}.etcd-backup-partial`);
  try {
    await pipeline(
      snapshot.stream,
      new Coalesce(),
      trailer,
      counter,
      createWriteStream(temp, { mode: 0o600, flags: "wx" }),
      signalOption,
    );
    if (!trailer.result) throw new Error("snapshot stream ended before its trailer was checked");
    await rename(temp, path);
  } catch (err) {
    snapshot.stream.destroy();
    await rm(temp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if ((err as NodeJS.ErrnoException).syscall === "open" && code)
      throw new Hinted(`cannot write ${path}: ${code}`, "check --out: its folder must exist and be writable");
    throw err;
  }
  return { trailer: trailer.result, bytes: counter.bytes, origin: snapshot.origin, path };
}
