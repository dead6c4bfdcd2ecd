import { Transform, type TransformCallback } from "node:stream";
import { createZstdDecompress, type ZstdDecompress } from "node:zlib";

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames have magic 0x184D2A50 to 0x184D2A5F (RFC 8878 section 3.1.2). */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/** The zstd stream is malformed in a way found before decompressing it. */
export class ZstdFormatError extends Error {}

type State =
  | { at: "magic" }
  | { at: "descriptor" }
  | { at: "skip"; left: number; next: "block-header" | "frame-end" }
  | { at: "block-header"; checksum: boolean }
  | { at: "block"; left: number; last: boolean; checksum: boolean }
  | { at: "skippable-size" };

/**
 * Finds where zstd frames end in a byte stream fed in pieces, from the frame and block headers alone
 * (RFC 8878 section 3.1): magic, frame header descriptor (window descriptor, dictionary id and content size
 * lengths follow from it), blocks with their 3-byte headers, optional 4-byte checksum; skippable frames.
 * It does not decompress or validate block contents: the decoder does.
 */
export class ZstdFrameSplitter {
  private state: State = { at: "magic" };
  /** Header bytes collected across pieces (at most 4). */
  private header: number[] = [];
  private checksumFlag = false;
  /** Total bytes seen, for error messages. */
  private offset = 0;

  /** True between frames: the stream may end here. */
  get atFrameBoundary(): boolean {
    return this.state.at === "magic" && this.header.length === 0;
  }

  /**
   * Consumes `data[from..]` up to and including the end of the current frame. Returns the offset just past
   * that frame's last byte, or `data.length` when the frame continues beyond this piece.
   */
  advance(data: Uint8Array, from: number): { end: number; frameEnded: boolean } {
    let i = from;
    while (i < data.length) {
      const s = this.state;
      if (s.at === "skip" || s.at === "block") {
        const n = Math.min(s.left, data.length - i);
        s.left -= n;
        i += n;
        if (s.left > 0) break;
        if (s.at === "block") {
          if (!s.last) this.state = { at: "block-header", checksum: s.checksum };
          else if (s.checksum) this.state = { at: "skip", left: 4, next: "frame-end" };
          else return this.frameEnd(from, i);
        } else if (s.next === "frame-end") return this.frameEnd(from, i);
        else this.state = { at: "block-header", checksum: this.checksumFlag };
        continue;
      }
      this.header.push(data[i]!);
      i++;
      const at = (back: number) => this.offset + (i - from) - back;
      const need = s.at === "descriptor" ? 1 : s.at === "block-header" ? 3 : 4;
      if (this.header.length < need) continue;
      const h = this.header;
      this.header = [];
      if (s.at === "magic") {
        const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        if (magic === ZSTD_MAGIC) {
          this.state = { at: "descriptor" };
        } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          this.state = { at: "skippable-size" };
        } else {
          throw new ZstdFormatError(`not zstd data at byte ${at(4)} (no frame magic number)`);
        }
      } else if (s.at === "skippable-size") {
        const size = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
        if (size === 0) return this.frameEnd(from, i);
        this.state = { at: "skip", left: size, next: "frame-end" };
      } else if (s.at === "descriptor") {
        const fhd = h[0]!;
        if (fhd & 0x08) throw new ZstdFormatError(`zstd frame header at byte ${at(1)} is invalid`);
        const fcsFlag = fhd >> 6;
        const singleSegment = (fhd >> 5) & 1;
        this.checksumFlag = ((fhd >> 2) & 1) === 1;
        const dictIdBytes = [0, 1, 2, 4][fhd & 3]!;
        const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
        const rest = (singleSegment ? 0 : 1) + dictIdBytes + fcsBytes;
        this.state =
          rest > 0
            ? { at: "skip", left: rest, next: "block-header" }
            : { at: "block-header", checksum: this.checksumFlag };
      } else if (s.at === "block-header") {
        const bh = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const last = (bh & 1) === 1;
        const type = (bh >> 1) & 3;
        const size = bh >>> 3;
        if (type === 3) throw new ZstdFormatError(`zstd block at byte ${at(3)} has a reserved type`);
        const body = type === 1 ? 1 : size; // an RLE block stores one byte, repeated `size` times
        this.state = { at: "block", left: body, last, checksum: s.checksum };
        if (body === 0) {
          // An empty raw block: handled by the loop's next turn only if more bytes come; settle it now.
          const next = this.state;
          if (!next.last) this.state = { at: "block-header", checksum: next.checksum };
          else if (next.checksum) this.state = { at: "skip", left: 4, next: "frame-end" };
          else return this.frameEnd(from, i);
        }
      }
    }
    this.offset += i - from;
    return { end: data.length, frameEnded: false };
  }

  private frameEnd(from: number, i: number): { end: number; frameEnded: boolean } {
    this.state = { at: "magic" };
    this.offset += i - from;
    return { end: i, frameEnded: true };
  }
}

/**
 * zstd decompression of a stream holding any number of frames, as `zstd -d` reads it. node's decoder ends its
 * output at the first frame boundary that does not fall on a full output buffer and drops the rest (a file
 * of two concatenated frames failed with "Unknown frame descriptor"), so each frame gets its own decoder;
 * frame ends come from ZstdFrameSplitter. Input that stops inside a frame is an error, not a short output.
 * Backpressure: a decoder is paused while this stream's reader is behind.
 */
export class ZstdDecompressStream extends Transform {
  private readonly splitter = new ZstdFrameSplitter();
  private decoder: ZstdDecompress | null = null;
  /** The decoder whose output is flowing (the current one, or one finishing its frame). */
  private flowing: ZstdDecompress | null = null;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.feed(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.splitter.atFrameBoundary) {
      callback(new ZstdFormatError("zstd data is truncated: it ends inside a frame"));
      return;
    }
    (this.decoder ? this.finishFrame() : Promise.resolve()).then(() => callback(), callback);
  }

  override _read(size: number): void {
    this.flowing?.resume();
    super._read(size);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.decoder?.destroy();
    this.flowing?.destroy();
    callback(err);
  }

  private async feed(chunk: Buffer): Promise<void> {
    let from = 0;
    while (from < chunk.length) {
      const { end, frameEnded } = this.splitter.advance(chunk, from);
      await this.decode(chunk.subarray(from, end));
      if (frameEnded) await this.finishFrame();
      from = end;
    }
  }

  private decode(piece: Buffer): Promise<void> {
    if (!this.decoder) this.decoder = this.startDecoder();
    const decoder = this.decoder;
    return new Promise((resolve, reject) => {
      decoder.write(piece, (err) => (err ? reject(err) : resolve()));
    });
  }

  private startDecoder(): ZstdDecompress {
    const decoder = createZstdDecompress({ chunkSize: 1 << 20 });
    decoder.on("data", (out: Buffer) => {
      if (!this.push(out)) decoder.pause();
    });
    // Also reported through the pending write or end; this listener keeps it from being an uncaught error.
    decoder.on("error", (err) => this.destroy(err));
    this.flowing = decoder;
    return decoder;
  }

  /** Ends the current frame's decoder and waits until all of its output has been pushed. */
  private finishFrame(): Promise<void> {
    const decoder = this.decoder!;
    this.decoder = null;
    return new Promise((resolve, reject) => {
      decoder.once("end", resolve);
      decoder.once("error", reject);
      decoder.end();
    });
  }
}
