import { Readable } from "node:stream";
import { BLOCK, encodeHeader, padding, type TarHeader } from "./tar-header.ts";

/** One member to write: its header, and for a regular file a function that opens its content. */
export interface TarInput {
  header: TarHeader;
  /** Opens the content; must yield exactly `header.size` bytes. Only called for files. */
  open?: () => AsyncIterable<Uint8Array>;
}

/**
 * A POSIX tar (pax interchange format) of the given members, streamed: each header, the content as
 * `open()` yields it, zero padding to the block, and the two zero blocks that end an archive. Members are
 * pulled one at a time as the reader consumes the stream, so memory stays flat. The stream fails when a
 * file yields more or fewer bytes than its header says (it changed while being archived).
 */
export function createTarStream(members: AsyncIterable<TarInput> | Iterable<TarInput>): Readable {
  return Readable.from(tarChunks(members), { objectMode: false, highWaterMark: 1 << 16 });
}

async function* tarChunks(members: AsyncIterable<TarInput> | Iterable<TarInput>): AsyncGenerator<Buffer> {
  for await (const member of members) {
    const h = member.header;
    const size = h.type === "file" ? h.size : 0;
    yield encodeHeader({ ...h, size });
    if (h.type !== "file") continue;
    let written = 0;
    if (member.open) {
      for await (const chunk of member.open()) {
        written += chunk.length;
        if (written > size) throw new Error(`${h.path} grew while being archived`);
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      }
    }
    if (written !== size)
      throw new Error(`${h.path} shrank while being archived (${written} of ${size} bytes)`);
    const pad = padding(size);
    if (pad.length > 0) yield pad;
  }
  yield Buffer.alloc(2 * BLOCK);
}
