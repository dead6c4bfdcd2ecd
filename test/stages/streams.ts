/** Shared by the stage tests: sample data, a source that feeds a buffer in pieces, a sink that collects. */
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";

/** Compressible text with incompressible stretches and long runs, so raw, RLE and compressed blocks all occur. */
export function sample(size: number, seed = 0): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  let i = seed;
  while (off < size) {
    const n = i++ % 11;
    const piece =
      n === 3
        ? randomBytes(2000)
        : n === 7
          ? Buffer.alloc(5000, 0x61)
          : Buffer.from(`/registry/configmaps/ns-${i % 40}/cm-${i} {"data":{"k":"${i}"}}\n`);
    off += piece.copy(out, off);
  }
  return out;
}

/** `input` as a stream of `size`-byte pieces; `onPiece` sees each piece as the consumer takes it. */
export function pieces(input: Buffer, size: number, onPiece: (piece: Buffer) => void = () => {}): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < input.length; off += size) {
        const piece = input.subarray(off, off + size);
        onPiece(piece);
        yield piece;
      }
    })(),
  );
}

/** A sink that keeps what it receives. */
export function collect(): { sink: Writable; result: () => Buffer } {
  const parts: Buffer[] = [];
  return {
    sink: new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(c);
        cb();
      },
    }),
    result: () => Buffer.concat(parts),
  };
}
