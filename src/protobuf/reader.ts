/**
 * The protobuf wire-format reader: byte ranges of one buffer, for the messages found inside a snapshot
 * (mvccpb.KeyValue, leasepb.Lease, Kubernetes objects) and, through wire.ts's `readFields`, the gRPC
 * messages we exchange. It reads varints as plain numbers and hands out offsets, not bigints and views:
 * inspect decodes every key of the database, and that difference is most of its time. Varints above 2^53
 * are available exactly via `bigVarint`. Views it returns (`bytes`) share the caller's buffer.
 */

export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

/** Walks the fields of the message in `buf[start, end)`. Throws on malformed input. */
export class ProtoReader {
  readonly buf: Uint8Array;
  private pos: number;
  private readonly end: number;
  /** Field number of the current field. */
  field = 0;
  wireType = 0;
  /** Value of a VARINT/I32 field (I64: low 53 bits as a number). */
  value = 0;
  /** Where the current field's value starts (for LEN: the payload; for VARINT: the first varint byte). */
  start = 0;
  /** Payload length of a LEN field. */
  length = 0;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Advances to the next field; false at the end of the message. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const tag = this.varint();
    this.field = Math.floor(tag / 8);
    this.wireType = tag % 8;
    if (this.field === 0) throw new Error("malformed protobuf: field number 0");
    this.start = this.pos;
    switch (this.wireType) {
      case VARINT:
        this.value = this.varint();
        break;
      case I64:
        this.need(8);
        this.value = readLe(this.buf, this.pos, 8);
        this.pos += 8;
        break;
      case LEN: {
        this.length = this.varint();
        this.start = this.pos;
        this.need(this.length);
        this.pos += this.length;
        break;
      }
      case I32:
        this.need(4);
        this.value = readLe(this.buf, this.pos, 4);
        this.pos += 4;
        break;
      default:
        throw new Error(`malformed protobuf: unsupported wire type ${this.wireType}`);
    }
    return true;
  }

  /** The current LEN field's payload as a view. */
  bytes(): Buffer {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + this.start, this.length);
  }

  /** The current LEN field as UTF-8 text. */
  string(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + this.start, this.length).toString("utf8");
  }

  /** A reader over the current LEN field, for an embedded message. */
  message(): ProtoReader {
    return new ProtoReader(this.buf, this.start, this.start + this.length);
  }

  /** The current VARINT field exactly, as a signed 64-bit integer (int64 fields such as lease IDs). */
  bigVarint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let p = this.start; ; p++) {
      const b = this.buf[p]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asIntN(64, result);
      shift += 7n;
    }
  }

  /** The current VARINT field as a signed number (int64 fields with small values, such as revisions). */
  signed(): number {
    return this.value > Number.MAX_SAFE_INTEGER ? Number(this.bigVarint()) : this.value;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new Error("malformed protobuf: truncated field");
  }

  private varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("malformed protobuf: truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new Error("malformed protobuf: varint too long");
  }
}

function readLe(buf: Uint8Array, off: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + buf[off + i]!;
  return v;
}
