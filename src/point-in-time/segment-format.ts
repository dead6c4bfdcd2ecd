/**
 * The payload of a log segment: a sequence of length-delimited records (a varint length, then the record),
 * each a small protobuf message of our own:
 *
 *   LogRecord { RevisionRecord revision = 1; LeaseRecord lease = 2; }
 *   RevisionRecord { int64 revision = 1; int64 unix_ms = 2; repeated bytes event = 3; }
 *   LeaseRecord { int64 id = 1; int64 ttl = 2; int64 at_revision = 3; bool revoked = 4; }
 *
 * `event` holds a raw `mvccpb.Event` exactly as etcd sent it. `unix_ms` is when the log received the
 * revision (etcd keeps no commit time). A lease record says that lease `id` with `ttl` seconds existed (or,
 * with `revoked`, no longer existed) when the log had read up to `at_revision`.
 *
 * Buffers: the records `parseSegment` returns hold views into the payload buffer it was given.
 */
import { createHash } from "node:crypto";
import { ProtoReader } from "../protobuf/reader.ts";
import { MessageWriter } from "../protobuf/wire.ts";

export interface RevisionRecord {
  kind: "revision";
  revision: number;
  unixMs: number;
  events: Buffer[];
}

export interface LeaseRecord {
  kind: "lease";
  id: bigint;
  ttl: number;
  atRevision: number;
  revoked: boolean;
}

export type LogRecord = RevisionRecord | LeaseRecord;

function lengthPrefix(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

export function encodeRecord(record: LogRecord): Buffer {
  let inner: Buffer;
  let field: number;
  if (record.kind === "revision") {
    const w = new MessageWriter().varint(1, record.revision).varint(2, record.unixMs);
    for (const e of record.events) w.message(3, e);
    inner = w.finish();
    field = 1;
  } else {
    inner = new MessageWriter()
      .varint(1, record.id)
      .varint(2, record.ttl)
      .varint(3, record.atRevision)
      .varint(4, record.revoked)
      .finish();
    field = 2;
  }
  const body = new MessageWriter().message(field, inner).finish();
  return Buffer.concat([lengthPrefix(body.length), body]);
}

/** Accumulates the records of one segment and what its manifest says about them. */
export class SegmentBuilder {
  private parts: Buffer[] = [];
  bytes = 0;
  events = 0;
  revisions = 0;
  leaseRecords = 0;
  firstRevision = 0;
  lastRevision = 0;
  firstUnixMs = 0;
  lastUnixMs = 0;

  add(record: LogRecord): void {
    const encoded = encodeRecord(record);
    this.parts.push(encoded);
    this.bytes += encoded.length;
    if (record.kind === "lease") {
      this.leaseRecords++;
      return;
    }
    if (this.revisions === 0) {
      this.firstRevision = record.revision;
      this.firstUnixMs = record.unixMs;
    }
    this.revisions++;
    this.events += record.events.length;
    this.lastRevision = record.revision;
    this.lastUnixMs = record.unixMs;
  }

  get empty(): boolean {
    return this.revisions === 0;
  }

  /** The payload and its sha256 (hex). */
  finish(): { payload: Buffer; sha256: string } {
    const payload = Buffer.concat(this.parts);
    return { payload, sha256: createHash("sha256").update(payload).digest("hex") };
  }
}

/** Parses a segment payload. Throws on a malformed or truncated record. */
export function parseSegment(payload: Buffer): LogRecord[] {
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos < payload.length) {
    let len = 0;
    let mul = 1;
    for (;;) {
      if (pos >= payload.length) throw new Error("malformed segment: truncated length");
      const b = payload[pos++]!;
      len += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 128;
    }
    if (pos + len > payload.length) throw new Error("malformed segment: truncated record");
    const r = new ProtoReader(payload, pos, pos + len);
    pos += len;
    while (r.next()) {
      const m = r.message();
      if (r.field === 1) {
        const rec: RevisionRecord = { kind: "revision", revision: 0, unixMs: 0, events: [] };
        while (m.next()) {
          if (m.field === 1) rec.revision = m.signed();
          else if (m.field === 2) rec.unixMs = m.signed();
          else if (m.field === 3) rec.events.push(m.bytes());
        }
        records.push(rec);
      } else if (r.field === 2) {
        const rec: LeaseRecord = { kind: "lease", id: 0n, ttl: 0, atRevision: 0, revoked: false };
        while (m.next()) {
          if (m.field === 1) rec.id = m.bigVarint();
          else if (m.field === 2) rec.ttl = m.signed();
          else if (m.field === 3) rec.atRevision = m.signed();
          else if (m.field === 4) rec.revoked = m.value !== 0;
        }
        records.push(rec);
      }
    }
  }
  return records;
}
