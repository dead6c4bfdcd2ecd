/**
 * POSIX tar headers (pax interchange format, IEEE 1003.1-2001 `pax`): 512-byte ustar blocks, with a pax
 * extended header (type `x`) before an entry whose path, link target or numbers do not fit the ustar fields.
 * Layout of a ustar block: name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1]
 * linkname[100] magic[6]="ustar\0" version[2]="00" uname[32] gname[32] devmajor[8] devminor[8] prefix[155].
 */

export const BLOCK = 512;

export type TarEntryType = "file" | "directory" | "symlink";

/** One archive member as both the writer and the reader see it. */
export interface TarHeader {
  /** Relative path with `/` separators; no trailing slash (the writer adds it for directories). */
  path: string;
  type: TarEntryType;
  /** Permission bits, including setuid/setgid/sticky (`& 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Content length; 0 for directories and symlinks. */
  size: number;
  /** Modification time, whole seconds since the epoch. */
  mtime: number;
  /** Symlink target. */
  linkpath?: string;
  uname?: string;
  gname?: string;
}

const TYPE_FLAG: Record<TarEntryType, string> = { file: "0", directory: "5", symlink: "2" };

/** Largest value an octal field of `width` bytes holds (width - 1 digits and a NUL). */
function octalMax(width: number): number {
  return 8 ** (width - 1) - 1;
}

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

/** Splits a path over ustar's prefix (155) and name (100) fields at a slash, or returns null. */
function splitUstarPath(path: string): { prefix: string; name: string } | null {
  if (!isAscii(path)) return null;
  if (path.length <= 100) return { prefix: "", name: path };
  for (let i = path.indexOf("/"); i >= 0; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { prefix, name };
  }
  return null;
}

/** One pax record: `<length> <key>=<value>\n`, where length counts the whole record in bytes. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`);
}

function writeString(block: Buffer, offset: number, width: number, value: string): void {
  block.write(value, offset, width, "utf8");
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

function ustarBlock(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, 0, 100, fields.name);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block.write(fields.typeflag, 156, 1, "ascii");
  writeString(block, 157, 100, fields.linkname);
  block.write("ustar\x0000", 257, 8, "ascii");
  writeString(block, 265, 32, fields.uname);
  writeString(block, 297, 32, fields.gname);
  writeString(block, 345, 155, fields.prefix);
  // The checksum is computed with its own field as eight spaces, then written as 6 octal digits, NUL, space.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return block;
}

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/**
 * The header blocks of one entry: a pax extended header (with its data) when a field does not fit ustar,
 * then the ustar header. Throws on values no tar can hold (negative numbers, NUL in a name).
 */
export function encodeHeader(h: TarHeader): Buffer {
  if (h.path.includes("\0") || h.linkpath?.includes("\0"))
    throw new Error(`path ${JSON.stringify(h.path)} holds a NUL byte`);
  for (const [k, v] of [
    ["mode", h.mode],
    ["uid", h.uid],
    ["gid", h.gid],
    ["size", h.size],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new Error(`${k} ${v} of ${h.path} is not a whole number >= 0`);
  }
  const path = h.type === "directory" ? `${h.path.replace(/\/+$/, "")}/` : h.path;
  const pax: Buffer[] = [];
  const split = splitUstarPath(path);
  if (!split) pax.push(paxRecord("path", path));
  const linkname = h.linkpath ?? "";
  if (!isAscii(linkname) || linkname.length > 100) pax.push(paxRecord("linkpath", linkname));
  const numbers = { uid: [h.uid, 8], gid: [h.gid, 8], size: [h.size, 12] } as const;
  for (const [key, [value, width]] of Object.entries(numbers)) {
    if (value > octalMax(width)) pax.push(paxRecord(key, String(value)));
  }
  const mtime = Math.max(0, Math.floor(h.mtime));
  if (mtime > octalMax(12)) pax.push(paxRecord("mtime", String(mtime)));
  for (const [key, value] of [
    ["uname", h.uname ?? ""],
    ["gname", h.gname ?? ""],
  ] as const) {
    if (!isAscii(value) || value.length > 32) pax.push(paxRecord(key, value));
  }
  const fit = (value: number, width: number) => (value > octalMax(width) ? 0 : value);
  const ustar = ustarBlock({
    name: split ? split.name : asciiFallback(path, 100),
    prefix: split ? split.prefix : "",
    mode: h.mode & 0o7777,
    uid: fit(h.uid, 8),
    gid: fit(h.gid, 8),
    size: fit(h.size, 12),
    mtime: fit(mtime, 12),
    typeflag: TYPE_FLAG[h.type],
    linkname: isAscii(linkname) && linkname.length <= 100 ? linkname : asciiFallback(linkname, 100),
    uname: isAscii(h.uname ?? "") ? (h.uname ?? "").slice(0, 32) : "",
    gname: isAscii(h.gname ?? "") ? (h.gname ?? "").slice(0, 32) : "",
  });
  if (pax.length === 0) return ustar;
  const data = Buffer.concat(pax);
  const base = path.replace(/\/$/, "").split("/").pop() ?? "entry";
  const paxHeader = ustarBlock({
    name: asciiFallback(`PaxHeaders/${base}`, 100),
    prefix: "",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: fit(mtime, 12),
    typeflag: "x",
    linkname: "",
    uname: "",
    gname: "",
  });
  return Buffer.concat([paxHeader, data, padding(data.length), ustar]);
}

/** What a pre-pax reader shows for a field that needed pax: an ASCII prefix of it. */
function asciiFallback(value: string, width: number): string {
  return value.replace(/[^\x20-\x7e]/g, "_").slice(0, width);
}

/** A parsed header block: the ustar fields before pax/GNU overrides are applied. */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
}

function readString(block: Buffer, offset: number, width: number): string {
  const field = block.subarray(offset, offset + width);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? width : nul).toString("utf8");
}

/** An octal field (spaces/NULs around it allowed), or GNU's base-256 form when its first byte has the top bit set. */
function readNumber(block: Buffer, offset: number, width: number, what: string): number {
  const field = block.subarray(offset, offset + width);
  if (field[0]! & 0x80) {
    let value = BigInt(field[0]! & 0x7f);
    for (const byte of field.subarray(1)) value = (value << 8n) | BigInt(byte);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`tar header ${what} is too large`);
    return Number(value);
  }
  const text = field
    .toString("ascii")
    .replace(/[\0 ]+$/g, "")
    .replace(/^[ ]+/, "")
    .replace(/\0.*$/, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar header ${what} ${JSON.stringify(text)} is not octal`);
  return Number.parseInt(text, 8);
}

/** True for the all-zero block that marks the end of an archive. */
export function isZeroBlock(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false;
  return true;
}

/**
 * Parses one header block, checking its checksum (unsigned sum, or the signed sum some old tars wrote) and
 * its magic (POSIX `ustar\000`, GNU `ustar  \0`, or none for v7). Throws when the block is not a header.
 */
export function decodeHeaderBlock(block: Buffer): RawHeader {
  const stored = readNumber(block, 148, 8, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed)
    throw new Error("tar header checksum mismatch (not a tar archive, or damaged)");
  const magic = block.toString("latin1", 257, 263);
  const posix = magic === "ustar\0";
  const name = readString(block, 0, 100);
  const prefix = posix ? readString(block, 345, 155) : "";
  return {
    name: prefix ? `${prefix}/${name}` : name,
    mode: readNumber(block, 100, 8, "mode"),
    uid: readNumber(block, 108, 8, "uid"),
    gid: readNumber(block, 116, 8, "gid"),
    size: readNumber(block, 124, 12, "size"),
    mtime: readNumber(block, 136, 12, "mtime"),
    typeflag: String.fromCharCode(block[156]!),
    linkname: readString(block, 157, 100),
    uname: readString(block, 265, 32),
    gname: readString(block, 297, 32),
  };
}

/** Parses pax extended header data: `<length> <key>=<value>\n` records. Throws on a malformed record. */
export function parsePaxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space > pos ? Number(data.toString("ascii", pos, space)) : Number.NaN;
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length || data[pos + len - 1] !== 0x0a) {
      throw new Error("malformed pax extended header record");
    }
    const record = data.toString("utf8", space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq <= 0) throw new Error("malformed pax extended header record");
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}
