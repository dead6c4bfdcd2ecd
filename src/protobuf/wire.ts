import { I32, I64, LEN, ProtoReader, VARINT } from "./reader.ts";

const WIRE_VARINT = VARINT;
const WIRE_I64 = I64;
const WIRE_LEN = LEN;

/**
 * The protobuf wire format, just enough for the handful of messages we exchange (etcd's Maintenance API,
 * Talos' machine API). Hand-written because the messages are small and fixed, and because decoding a
 * snapshot chunk must hand out the blob as a view of the received buffer, without a copy.
 */

export { I32 as WIRE_I32, I64 as WIRE_I64, LEN as WIRE_LEN, VARINT as WIRE_VARINT };

/** One field as read off the wire. `bytes` is a view into the input for length-delimited fields. */
export interface WireField {
  field: number;
  wireType: number;
  /** varint, i64 and i32 values (varints above 2^53 keep full precision as bigint). */
  int: bigint;
  bytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * Iterates over the fields of a message, with exact 64-bit values (the one wire reader, reader.ts, walks the
 * bytes). Throws on a malformed or truncated message.
 */
export function* readFields(buf: Uint8Array): Generator<WireField> {
  const r = new ProtoReader(buf);
  while (r.next()) {
    const { field, wireType } = r;
    switch (wireType) {
      case WIRE_VARINT:
        yield { field, wireType, int: BigInt.asUintN(64, r.bigVarint()), bytes: EMPTY };
        break;
      case WIRE_I64:
        yield {
          field,
          wireType,
          int: new DataView(buf.buffer, buf.byteOffset + r.start, 8).getBigUint64(0, true),
          bytes: EMPTY,
        };
        break;
      case WIRE_LEN:
        yield { field, wireType, int: 0n, bytes: buf.subarray(r.start, r.start + r.length) };
        break;
      default:
        yield { field, wireType, int: BigInt(r.value), bytes: EMPTY };
    }
  }
}

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
