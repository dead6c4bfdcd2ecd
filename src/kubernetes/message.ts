import { LEN, ProtoReader, VARINT } from "../protobuf/reader.ts";
import type { Field, FieldType, Message, Scalar } from "./schema/index.ts";

/**
 * A Kubernetes protobuf message shown as the apiserver's JSON shows the Go value the message decodes to
 * (encoding/json over the k8s.io/api types):
 * - a field absent from the bytes has its Go zero value: "" / 0 / false for scalars, null for pointers,
 *   slices, maps and []byte, the zero struct (rendered the same way) for an embedded message;
 * - `omitempty` leaves out false, 0, "", null and empty slices and maps, never a struct; `omitzero` leaves
 *   out the zero value (a zero Time included); an `inline` field's keys join its parent's;
 * - int64 is a JSON number (a bigint beyond 2^53), []byte is base64, maps are objects;
 * - the types with a MarshalJSON of their own: Time (RFC 3339, seconds), MicroTime (RFC 3339, microseconds),
 *   Duration (Go's duration text), Quantity (its text), IntOrString (number or string), RawExtension,
 *   FieldsV1 and apiextensions JSON (the embedded JSON itself; a `k8s\0` object inside is decoded), named
 *   slices (a JSON array), JSONSchemaPropsOrArray/OrBool/OrStringArray;
 * - a field this schema does not know (a newer Kubernetes), or whose wire type does not match, is kept under
 *   UNKNOWN_FIELDS with its number, wire type and bytes: nothing read is dropped.
 */

export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };

/**
 * Sets `key` as an own property of `o`, whatever its name: map keys come from the stored data, and a
 * ConfigMap may well hold a key `__proto__`, which a plain assignment would take for the prototype.
 */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The key under which a message's fields unknown to the schema are listed. */
export const UNKNOWN_FIELDS = "x-etcd-backup-unknown-fields";

/** Decodes an embedded `k8s\0` object (set by object.ts, which owns the envelope). */
let decodeEmbedded: ((bytes: Buffer) => Json) | null = null;
export function setEmbeddedObjectDecoder(decode: (bytes: Buffer) => Json): void {
  decodeEmbedded = decode;
}

/** Decodes the message in `r` by `message`'s schema. `unknown` counts the fields kept unknown. */
export function decodeMessage(message: Message, r: ProtoReader, unknown: { count: number }): Json {
  const present = new Map<Field, Json>();
  const unknownFields: Json[] = [];
  while (r.next()) {
    const f = message.byNumber.get(r.field);
    if (!f || !wireMatches(f, r.wireType)) {
      unknownFields.push(rawField(r));
      continue;
    }
    if (f.mapKey) {
      const map = (present.get(f) ?? {}) as Record<string, Json>;
      present.set(f, map);
      const e = r.message();
      let key: Json = scalarZero(f.mapKey);
      let value: Json | undefined;
      while (e.next()) {
        if (e.field === 1) key = readValue(f.mapKey, e, unknown);
        else if (e.field === 2) value = readValue(f.type, e, unknown);
      }
      setOwn(map, String(key), value ?? zeroOf(f.type, unknown));
    } else if (f.repeated) {
      const list = (present.get(f) ?? []) as Json[];
      present.set(f, list);
      if (r.wireType === LEN && typeof f.type === "string" && f.type !== "s" && f.type !== "y") {
        readPacked(f.type, r, list);
      } else list.push(readValue(f.type, r, unknown));
    } else present.set(f, readValue(f.type, r, unknown));
  }
  if (message.special) return special(message, present);
  const out: { [key: string]: Json } = {};
  for (const f of message.fields) {
    if (f.skip) continue;
    const has = present.has(f);
    const v = has ? present.get(f)! : zeroOfField(f, unknown);
    if (f.inline) {
      if (v && typeof v === "object" && !Array.isArray(v)) Object.assign(out, v);
      continue;
    }
    if (f.omitempty && isEmpty(f, v)) continue;
    if (f.omitzero && (!has || isZero(f, v, unknown))) continue;
    out[f.json] = v;
  }
  if (unknownFields.length > 0) {
    unknown.count += unknownFields.length;
    out[UNKNOWN_FIELDS] = unknownFields;
  }
  return out;
}

function wireMatches(f: Field, wireType: number): boolean {
  if (f.mapKey || typeof f.type !== "string") return wireType === LEN;
  switch (f.type) {
    case "s":
    case "y":
      return wireType === LEN;
    case "d":
      return wireType === 1 || (f.repeated && wireType === LEN);
    case "f":
      return wireType === 5 || (f.repeated && wireType === LEN);
    default:
      return wireType === VARINT || (f.repeated && wireType === LEN);
  }
}

/** A field the schema cannot place: its number, wire type and value bytes (base64). */
function rawField(r: ProtoReader): Json {
  const end =
    r.wireType === LEN
      ? r.start + r.length
      : r.wireType === 1
        ? r.start + 8
        : r.wireType === 5
          ? r.start + 4
          : varintEnd(r.buf, r.start);
  return {
    number: r.field,
    wireType: r.wireType,
    bytes: Buffer.from(r.buf.buffer, r.buf.byteOffset + r.start, end - r.start).toString("base64"),
  };
}

function varintEnd(buf: Uint8Array, start: number): number {
  let p = start;
  while (buf[p]! & 0x80) p++;
  return p + 1;
}

function readValue(type: FieldType, r: ProtoReader, unknown: { count: number }): Json {
  if (typeof type !== "string") return decodeMessage(type, r.message(), unknown);
  switch (type) {
    case "s":
      return r.string();
    case "y":
      return r.bytes().toString("base64");
    case "b":
      return r.value !== 0;
    case "i":
      return Number(BigInt.asIntN(32, r.bigVarint()));
    case "u":
      return Number(BigInt.asUintN(32, r.bigVarint()));
    case "l": {
      if (r.value <= Number.MAX_SAFE_INTEGER) return r.value;
      const v = r.bigVarint();
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case "U": {
      if (r.value <= Number.MAX_SAFE_INTEGER) return r.value;
      return BigInt.asUintN(64, r.bigVarint());
    }
    case "d":
      return new DataView(r.buf.buffer, r.buf.byteOffset + r.start, 8).getFloat64(0, true);
    case "f":
      return new DataView(r.buf.buffer, r.buf.byteOffset + r.start, 4).getFloat32(0, true);
  }
}

/** A packed repeated scalar (proto3 style; gogo's proto2 does not pack, but a reader accepts both). */
function readPacked(type: Scalar, r: ProtoReader, into: Json[]): void {
  const view = new DataView(r.buf.buffer, r.buf.byteOffset);
  const end = r.start + r.length;
  if (type === "d" || type === "f") {
    const size = type === "d" ? 8 : 4;
    for (let p = r.start; p + size <= end; p += size) {
      into.push(type === "d" ? view.getFloat64(p, true) : view.getFloat32(p, true));
    }
    return;
  }
  // Re-read the payload as a sequence of varint fields: prefix each with a field-1 varint tag.
  const parts: number[] = [];
  for (let p = r.start; p < end; ) {
    const e = varintEnd(r.buf, p);
    parts.push(0x08, ...r.buf.subarray(p, e));
    p = e;
  }
  const sub = new ProtoReader(Uint8Array.from(parts));
  while (sub.next()) into.push(readValue(type, sub, { count: 0 }));
}

function scalarZero(t: Scalar): Json {
  return t === "s" ? "" : t === "b" ? false : t === "y" ? null : 0;
}

/** The Go zero value of a field as encoding/json shows it. */
function zeroOfField(f: Field, unknown: { count: number }): Json {
  if (f.repeated || f.mapKey || f.pointer) return null;
  return zeroOf(f.type, unknown);
}

const EMPTY = new Uint8Array(0);
/** Zero values of messages, computed once each (they hold no unknown fields); handed out as copies. */
const zeros = new Map<Message, Json>();

function zeroOf(type: FieldType, unknown: { count: number }): Json {
  if (typeof type === "string") return scalarZero(type);
  let zero = zeros.get(type);
  if (zero === undefined) {
    zero = decodeMessage(type, new ProtoReader(EMPTY), unknown);
    zeros.set(type, zero);
  }
  return zero !== null && typeof zero === "object" ? structuredClone(zero) : zero;
}

/**
 * encoding/json's omitempty: false, 0, "", nil, and empty slices and maps; a struct never, even one whose
 * MarshalJSON gives null (a zero Time or MicroTime is `"eventTime": null`, not left out).
 */
function isEmpty(f: Field, v: Json): boolean {
  if (v === null) {
    const struct = typeof f.type !== "string" && f.type.special !== "array";
    return !struct || f.pointer === true || f.repeated === true || f.mapKey !== undefined;
  }
  if (f.pointer) return false;
  if (f.repeated || f.mapKey)
    return Array.isArray(v) ? v.length === 0 : Object.keys(v as object).length === 0;
  if (typeof f.type !== "string") return f.type.special === "array" && Array.isArray(v) && v.length === 0;
  return v === "" || v === 0 || v === false || v === 0n;
}

/** Go's omitzero: the zero value (IsZero for Time), compared as shown. */
function isZero(f: Field, v: Json, unknown: { count: number }): boolean {
  if (v === null) return true;
  if (f.repeated || f.mapKey || f.pointer) return false;
  return JSON.stringify(v, bigintReplacer) === JSON.stringify(zeroOf(f.type, unknown), bigintReplacer);
}

function bigintReplacer(_key: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

/** Go's zero time.Time, in Unix seconds (January 1, year 1). */
const ZERO_TIME_SECONDS = -62135596800;

function special(message: Message, present: Map<Field, Json>): Json {
  const field = (n: number): Json | undefined => {
    const f = message.byNumber.get(n);
    return f ? present.get(f) : undefined;
  };
  switch (message.special) {
    case "time": {
      if (present.size === 0) return null;
      const seconds = Number(field(1) ?? 0);
      return seconds === ZERO_TIME_SECONDS ? null : formatTime(seconds, null);
    }
    case "microtime": {
      if (present.size === 0) return null;
      const seconds = Number(field(1) ?? 0);
      const nanos = Number(field(2) ?? 0);
      return seconds === ZERO_TIME_SECONDS && nanos === 0 ? null : formatTime(seconds, nanos);
    }
    case "duration":
      return formatDuration(BigInt((field(1) as number | bigint | undefined) ?? 0));
    case "quantity":
      return (field(1) as string | undefined) || "0";
    case "intorstring":
      return Number(field(1) ?? 0) === 1 ? ((field(3) as string | undefined) ?? "") : Number(field(2) ?? 0);
    case "rawjson":
      return embeddedJson(field(1) as string | undefined);
    case "array": {
      const items = field(1) as Json[] | undefined;
      return items && items.length > 0 ? items : null;
    }
    case "schemaorarray": {
      const list = field(2) as Json[] | undefined;
      return list && list.length > 0 ? list : (field(1) ?? null);
    }
    case "schemaorbool":
      return field(2) ?? field(1) === true;
    case "schemaorstrings": {
      const list = field(2) as Json[] | undefined;
      return list && list.length > 0 ? list : (field(1) ?? null);
    }
  }
  throw new Error(`schema: unknown special message kind ${message.special}`);
}

/** RFC 3339 in UTC: whole seconds for Time, six fraction digits for MicroTime (Go's RFC3339Micro). */
function formatTime(seconds: number, nanos: number | null): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const date = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const clock = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const fraction = nanos === null ? "" : `.${pad(Math.floor(nanos / 1000), 6)}`;
  return `${date}T${clock}${fraction}Z`;
}

/** time.Duration's String(): "1h2m3.5s", "1.5ms", "0s". */
export function formatDuration(d: bigint): string {
  if (d === 0n) return "0s";
  const negative = d < 0n;
  let u = negative ? -d : d;
  let out: string;
  if (u < 1_000_000_000n) {
    const [unit, scale] = u < 1000n ? ["ns", 1n] : u < 1_000_000n ? ["µs", 1000n] : ["ms", 1_000_000n];
    out = `${fraction(u, scale)}${unit}`;
  } else {
    const h = u / 3_600_000_000_000n;
    u -= h * 3_600_000_000_000n;
    const m = u / 60_000_000_000n;
    u -= m * 60_000_000_000n;
    out = `${fraction(u, 1_000_000_000n)}s`;
    if (h > 0n) out = `${h}h${m}m${out}`;
    else if (m > 0n) out = `${m}m${out}`;
  }
  return negative ? `-${out}` : out;
}

/** `v / scale` with the fraction's trailing zeros dropped. */
function fraction(v: bigint, scale: bigint): string {
  const whole = v / scale;
  const rest = v % scale;
  if (rest === 0n) return String(whole);
  const digits = String(scale).length - 1;
  return `${whole}.${String(rest).padStart(digits, "0").replace(/0+$/, "")}`;
}

/** The JSON held in a RawExtension/FieldsV1/JSON: parsed (int64s exact), or a decoded `k8s\0` object. */
function embeddedJson(base64: string | undefined): Json {
  if (!base64) return null;
  const bytes = Buffer.from(base64, "base64");
  if (bytes.length >= 4 && bytes.readUInt32BE(0) === 0x6b387300 && decodeEmbedded)
    return decodeEmbedded(bytes);
  try {
    return parseJsonExact(bytes.toString("utf8"));
  } catch {
    return { "x-etcd-backup-raw": base64 };
  }
}

/** JSON.parse keeping integers beyond 2^53 exact (as bigints). */
export function parseJsonExact(text: string): Json {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === "number" &&
    !Number.isSafeInteger(value) &&
    context?.source !== undefined &&
    /^-?\d+$/.test(context.source)
      ? BigInt(context.source)
      : value,
  ) as Json;
}
