import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { constants, createZstdCompress, type ZstdCompress } from "node:zlib";
import { releaseHandedOver } from "./buffer-handover.ts";
import { COALESCE_BYTES } from "./coalesce.ts";

/**
 * Input bytes per zstd frame. 1 MiB: save's peak RSS 126-130 -> 114-128 MiB (large-value bench snapshot, from a
 * file, 3 runs each) and 123 -> 111 MiB (Kubernetes-shaped) against 2 MiB frames, for 0.15-0.3% more stored
 * bytes at the same CPU; every worker holds its frame's input until it is compressed. (2 MiB frames had come out
 * 0.2% smaller than one zstd stream, and held less memory than 4 or 8 MiB frames at the same speed.)
 */
export const FRAME_INPUT_BYTES = 1 << 20;

/** Frames compressed at once: one per core, at most 4 (libuv's thread pool has 4 threads by default). */
export function defaultFrameWorkers(): number {
  return Math.min(4, Math.max(1, availableParallelism()));
}

export interface ZstdFramesOptions {
  level: number;
  frameBytes?: number;
  workers?: number;
}

/**
 * One zstd compressor reused frame after frame (a compression context per frame cost more system time than
 * the parallelism saved). A frame is its input written, then `ZSTD_e_end`.
 */
class FrameWorker {
  private readonly zstd: ZstdCompress;
  private parts: Buffer[] = [];
  private failure: Error | null = null;

  constructor(level: number) {
    this.zstd = createZstdCompress({
      // Output buffers of 256 KiB: node's zlib slices its output from one buffer of chunkSize, which stays
      // alive until the last slice is consumed.
      chunkSize: 256 << 10,
      params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
    });
    this.zstd.on("data", (part: Buffer) => this.parts.push(part));
    this.zstd.on("error", (err) => {
      this.failure = err;
    });
  }

  /**
   * Compresses `input` (the pieces of one frame) into one complete frame, returned as its output pieces. Once
   * zstd has read the whole frame, pieces handed over to this stage are freed (stages/buffer-handover.ts).
   */
  frame(input: Buffer[]): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const onError = (err: Error) => reject(err);
      this.zstd.once("error", onError);
      for (const piece of input) this.zstd.write(piece);
      this.zstd.flush(constants.ZSTD_e_end, () => {
        this.zstd.off("error", onError);
        if (this.failure) return reject(this.failure);
        for (const piece of input) releaseHandedOver(piece);
        const out = this.parts;
        this.parts = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.zstd.destroy();
  }
}

/**
 * zstd compression on several threads: the input is cut into frames of `frameBytes` that are compressed at the
 * same time, and written out in input order. A sequence of zstd frames is one valid `.zst` file (RFC 8878
 * section 3.1): `zstd -d` and ours (ZstdDecompressStream) return the concatenated content.
 *
 * Why: node's zstd stream uses one thread (ZSTD_c_nbWorkers breaks node's stream glue, which takes input the
 * library did not consume yet as the end of the stream), and at level 3 compression was the slowest stage of
 * save. Memory: at most `workers` frames of input are held while they compress, plus their output. Input chunks
 * are retained until their frame is compressed, so writers must not reuse a chunk's memory.
 */
export class ZstdFrames extends Transform {
  private readonly frameBytes: number;
  private readonly idle: FrameWorker[];
  private readonly all: FrameWorker[];
  private pieces: Buffer[] = [];
  private held = 0;
  private framesStarted = 0;
  /** Frames being compressed, oldest first, with the worker to give back when each is done. */
  private readonly inFlight: { worker: FrameWorker; output: Promise<Buffer[]> }[] = [];

  constructor(options: ZstdFramesOptions) {
    super({ highWaterMark: COALESCE_BYTES });
    this.frameBytes = options.frameBytes ?? FRAME_INPUT_BYTES;
    const workers = Math.max(1, options.workers ?? defaultFrameWorkers());
    this.all = Array.from({ length: workers }, () => new FrameWorker(options.level));
    this.idle = [...this.all];
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.pieces.push(chunk);
    this.held += chunk.length;
    if (this.held < this.frameBytes) {
      callback();
      return;
    }
    this.startFrame().then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    // Empty input still makes one (empty) frame, as a zstd stream would: `zstd -d` refuses a 0-byte file.
    const last = this.held > 0 || this.framesStarted === 0 ? this.startFrame() : Promise.resolve();
    last
      .then(async () => {
        while (this.inFlight.length > 0) await this.emitOldest();
      })
      .then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    for (const w of this.all) w.close();
    callback(err);
  }

  /** Hands the held pieces to an idle worker, first emitting the oldest frame when none is idle. */
  private async startFrame(): Promise<void> {
    if (this.idle.length === 0) await this.emitOldest();
    const worker = this.idle.pop()!;
    const input = this.pieces;
    this.pieces = [];
    this.held = 0;
    this.framesStarted++;
    const output = worker.frame(input);
    // A failure is handled when the frame's turn comes; until then it must not count as unhandled.
    output.catch(() => {});
    this.inFlight.push({ worker, output });
  }

  private async emitOldest(): Promise<void> {
    const oldest = this.inFlight.shift()!;
    for (const part of await oldest.output) this.push(part);
    this.idle.push(oldest.worker);
  }
}
