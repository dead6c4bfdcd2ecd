/**
 * The protobuf wire format, just enough for the handful of messages we exchange (etcd's Maintenance API,
 * Talos' machine API). Hand-written because the messages are small and fixed, and because decoding a
 * snapshot chunk must hand out the blob as a view of the received buffer, without a copy.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One field as read off the wire. `bytes` is a view into the input for length-delimited fields. */
export interface WireField {
  field: number;
  wireType: number;
  /** varint, i64 and i32 values (varints above 2^53 keep full precision as bigint). */
  int: bigint;
  bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Iterates over the fields of a message. Throws on a malformed or truncated message. */
export function* readFields(buf: Uint8Array): Generator<WireField> {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos);
    pos = afterTag;
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (field === 0) throw new Error("malformed protobuf: field number 0");
    switch (wireType) {
      case WIRE_VARINT: {
        const [v, next] = readVarint(buf, pos);
        pos = next;
        yield { field, wireType, int: v, bytes: EMPTY };
        break;
      }
      case WIRE_I64: {
        if (pos + 8 > buf.length) throw new Error("malformed protobuf: truncated fixed64");
        const v = new DataView(buf.buffer, buf.byteOffset + pos, 8).getBigUint64(0, true);
        pos += 8;
        yield { field, wireType, int: v, bytes: EMPTY };
        break;
      }
      case WIRE_LEN: {
        const [len, next] = readVarint(buf, pos);
        const end = next + Number(len);
        if (end > buf.length) throw new Error("malformed protobuf: truncated length-delimited field");
        yield { field, wireType, int: 0n, bytes: buf.subarray(next, end) };
        pos = end;
        break;
      }
      case WIRE_I32: {
        if (pos + 4 > buf.length) throw new Error("malformed protobuf: truncated fixed32");
        const v = new DataView(buf.buffer, buf.byteOffset + pos, 4).getUint32(0, true);
        pos += 4;
        yield { field, wireType, int: BigInt(v), bytes: EMPTY };
        break;
      }
      default:
        throw new Error(`malformed protobuf: unsupported wire type ${wireType}`);
    }
  }
}

function readVarint(buf: Uint8Array, start: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let pos = start;
  for (;;) {
    if (pos >= buf.length) throw new Error("malformed protobuf: truncated varint");
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error("malformed protobuf: varint too long");
  }
}

/** Builds a message field by field. */
export class MessageWriter {
  private parts: Uint8Array[] = [];

  private tag(field: number, wireType: number): void {
    this.parts.push(encodeVarint(BigInt((field << 3) | wireType)));
  }

  /** Writes a varint field; zero values are skipped as proto3 does. Negative int64 values are two's complement. */
  varint(field: number, value: bigint | number | boolean): this {
    let v = typeof value === "boolean" ? (value ? 1n : 0n) : BigInt(value);
    if (v === 0n) return this;
    if (v < 0n) v = BigInt.asUintN(64, v);
    this.tag(field, WIRE_VARINT);
    this.parts.push(encodeVarint(v));
    return this;
  }

  /** Writes a length-delimited field (bytes, string or an encoded sub-message); empty values are skipped. */
  bytes(field: number, value: Uint8Array | string | undefined): this {
    if (value === undefined) return this;
    const data = typeof value === "string" ? new TextEncoder().encode(value) : value;
    if (data.length === 0) return this;
    this.tag(field, WIRE_LEN);
    this.parts.push(encodeVarint(BigInt(data.length)));
    this.parts.push(data);
    return this;
  }

  /** Writes a sub-message even when it is empty (presence matters for messages). */
  message(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.parts.push(encodeVarint(BigInt(value.length)));
    this.parts.push(value);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function encodeVarint(value: bigint): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** Decodes a UTF-8 string field. */
export function fieldString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8");
}
