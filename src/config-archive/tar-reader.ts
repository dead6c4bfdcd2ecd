import { BLOCK, decodeHeaderBlock, isZeroBlock, parsePaxRecords, type TarHeader } from "./tar-header.ts";

/** One member as read: its header (pax and GNU long names applied) and its content, to read before the next. */
export interface TarMember {
  header: TarHeader;
  /** The content (empty for directories and symlinks). Members not read are skipped. */
  body: AsyncIterable<Buffer>;
}

/** Pulls exact byte counts out of a chunk stream. */
class ByteSource {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.chunks.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.length);
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    return true;
  }

  /** Exactly `n` bytes, or null at a clean end (no byte left). Throws at an end inside the `n` bytes. */
  async read(n: number): Promise<Buffer | null> {
    while (this.pending.length < n) {
      if (!(await this.fill())) {
        if (this.pending.length === 0) return null;
        throw new Error("tar archive is truncated");
      }
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** `n` bytes as they arrive, without gathering them. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw new Error("tar archive is truncated");
      const take = Math.min(left, this.pending.length);
      const out = this.pending.subarray(0, take);
      this.pending = this.pending.subarray(take);
      left -= take;
      yield out;
    }
  }
}

const TYPES: Record<string, TarHeader["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "5": "directory",
  "2": "symlink",
};

/**
 * Reads a tar archive (POSIX ustar and pax, GNU tar's own format, v7) member by member, pulling bytes only
 * as the caller consumes them. Pax `x` records (path, linkpath, size, uid, gid, mtime, uname, gname) and GNU
 * `L`/`K` long names are applied to the member they precede; global `g` headers are honoured likewise.
 * Throws on a damaged header, a truncated archive, and member types this tool does not restore (hard links,
 * devices, FIFOs), naming the member.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarMember> {
  const bytes = new ByteSource(source);
  const global = new Map<string, string>();
  let local = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await bytes.read(BLOCK);
    if (block === null) throw new Error("tar archive ends without its end-of-archive blocks (truncated)");
    if (isZeroBlock(block)) return;
    const raw = decodeHeaderBlock(block);
    const dataOf = async (): Promise<Buffer> => {
      const data = raw.size === 0 ? Buffer.alloc(0) : await bytes.read(raw.size);
      if (data === null) throw new Error("tar archive is truncated");
      await skipPadding(bytes, raw.size);
      return Buffer.from(data);
    };
    if (raw.typeflag === "x") {
      local = parsePaxRecords(await dataOf());
      continue;
    }
    if (raw.typeflag === "g") {
      for (const [k, v] of parsePaxRecords(await dataOf())) global.set(k, v);
      continue;
    }
    if (raw.typeflag === "L" || raw.typeflag === "K") {
      const text = (await dataOf()).toString("utf8").replace(/\0+$/, "");
      if (raw.typeflag === "L") longName = text;
      else longLink = text;
      continue;
    }
    const pax = new Map([...global, ...local]);
    const path = pax.get("path") ?? longName ?? raw.name;
    local = new Map();
    longName = undefined;
    const linkpath = pax.get("linkpath") ?? longLink ?? raw.linkname;
    longLink = undefined;
    const type = TYPES[raw.typeflag];
    if (!type) {
      const kind = raw.typeflag === "1" ? "a hard link" : `entry type ${JSON.stringify(raw.typeflag)}`;
      throw new Error(`${path} is ${kind}, which this tool does not restore`);
    }
    const num = (key: string, fallback: number) => {
      const v = pax.get(key);
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0)
        throw new Error(`pax ${key} ${JSON.stringify(v)} of ${path} is not a number`);
      return Math.floor(n);
    };
    const size = type === "file" ? num("size", raw.size) : 0;
    const header: TarHeader = {
      path: path.replace(/\/+$/, ""),
      type,
      mode: raw.mode & 0o7777,
      uid: num("uid", raw.uid),
      gid: num("gid", raw.gid),
      size,
      mtime: num("mtime", raw.mtime),
      ...(type === "symlink" ? { linkpath } : {}),
      uname: pax.get("uname") ?? raw.uname,
      gname: pax.get("gname") ?? raw.gname,
    };
    // Directories and links may carry a size in odd archives; their data is skipped.
    const dataSize = type === "file" ? size : num("size", raw.size);
    // The caller may read the content, part of it, or none: whatever is left is skipped afterwards.
    let left = dataSize;
    const body = (async function* () {
      for await (const chunk of bytes.stream(left)) {
        left -= chunk.length;
        yield chunk;
      }
    })();
    yield { header, body: type === "file" ? body : emptyBody() };
    for await (const chunk of bytes.stream(left)) left -= chunk.length;
    await skipPadding(bytes, dataSize);
  }
}

async function* emptyBody(): AsyncGenerator<Buffer> {}

async function skipPadding(bytes: ByteSource, size: number): Promise<void> {
  const rest = size % BLOCK;
  if (rest === 0) return;
  if ((await bytes.read(BLOCK - rest)) === null) throw new Error("tar archive is truncated");
}
