import { PassThrough, type Transform } from "node:stream";
import { UsageError } from "../errors.ts";
import { COALESCE_BYTES } from "./coalesce.ts";
import { ZstdDecompressStream } from "./zstd-decompress.ts";
import { ZstdFrames } from "./zstd-frames.ts";

export type Compression = "zstd" | "none";

/** zstd's default level; 3 compresses etcd's page-structured data well at several hundred MB/s. */
export const DEFAULT_ZSTD_LEVEL = 3;

export function parseCompression(value: string): Compression {
  if (value === "zstd" || value === "none") return value;
  throw new UsageError(
    `unknown compression ${JSON.stringify(value)}`,
    "use --compress zstd or --compress none",
  );
}

export function parseLevel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 19) {
    throw new UsageError(`compression level ${JSON.stringify(value)} is out of range`, "use --level 1 to 19");
  }
  return n;
}

/** A compressing stage; `none` passes bytes through. zstd output is a sequence of frames (see ZstdFrames). */
export function compressStage(kind: Compression, level = DEFAULT_ZSTD_LEVEL): Transform {
  if (kind === "none") return new PassThrough({ highWaterMark: COALESCE_BYTES });
  return new ZstdFrames({ level });
}

/** The matching decompressing stage; zstd input may hold several frames (see ZstdDecompressStream). */
export function decompressStage(kind: Compression): Transform {
  if (kind === "none") return new PassThrough({ highWaterMark: 1 << 20 });
  return new ZstdDecompressStream();
}
