/**
 * A watch on etcd's whole keyspace through the gRPC `Watch/Watch` stream, for the revision log. Messages are
 * encoded by hand (etcdserverpb, mvccpb field numbers, checked against etcd's api/etcdserverpb/rpc.proto and
 * api/mvccpb/kv.proto). Events are handed out as the raw `mvccpb.Event` bytes etcd sent, never re-encoded.
 *
 * Buffers: every event's `raw` is a view into the gRPC message it came in; grpc-js allocates one Buffer per
 * message and never reuses it, so the views stay valid for as long as they are kept.
 *
 * Talos nodes do not expose etcd's Watch through apid: the log needs etcd's own gRPC endpoint.
 */
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { grpcReason } from "../grpc/failure.ts";
import { ProtoReader } from "../protobuf/reader.ts";
import { MessageWriter, readFields } from "../protobuf/wire.ts";
import { connectEtcd, type EtcdConnection, type EtcdSourceOptions } from "./etcd.ts";

const WATCH = "/etcdserverpb.Watch/Watch";
const LEASE_LEASES = "/etcdserverpb.Lease/LeaseLeases";
const RANGE = "/etcdserverpb.KV/Range";
const LEASE_TTL = "/etcdserverpb.Lease/LeaseTimeToLive";

export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

/** What the log needs from one `mvccpb.Event`, decoded from its raw bytes. */
export interface DecodedEvent {
  type: typeof EVENT_PUT | typeof EVENT_DELETE;
  key: Buffer;
  /** The event's main revision (kv.mod_revision). */
  revision: number;
  createRevision: number;
  version: number;
  value: Buffer;
  /** Lease ID, 0n for none. */
  lease: bigint;
}

/** Decodes mvccpb.Event{type=1, kv=2 KeyValue{key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6}}. */
export function decodeEvent(raw: Uint8Array): DecodedEvent {
  const out: DecodedEvent = {
    type: EVENT_PUT,
    key: Buffer.alloc(0),
    revision: 0,
    createRevision: 0,
    version: 0,
    value: Buffer.alloc(0),
    lease: 0n,
  };
  const r = new ProtoReader(raw);
  while (r.next()) {
    if (r.field === 1) out.type = r.value === EVENT_DELETE ? EVENT_DELETE : EVENT_PUT;
    else if (r.field === 2) {
      const kv = r.message();
      while (kv.next()) {
        if (kv.field === 1) out.key = kv.bytes();
        else if (kv.field === 2) out.createRevision = kv.signed();
        else if (kv.field === 3) out.revision = kv.signed();
        else if (kv.field === 4) out.version = kv.signed();
        else if (kv.field === 5) out.value = kv.bytes();
        else if (kv.field === 6) out.lease = kv.bigVarint();
      }
    }
  }
  if (out.revision <= 0) throw new Error("malformed watch event: no mod revision");
  return out;
}

/** One message of the watch, as the log reads it. */
export type WatchMessage =
  /** Events of whole revisions (etcd never splits a revision across responses), in revision order. */
  | { kind: "events"; events: { revision: number; raw: Buffer }[] }
  /** Every event up to `revision` has been sent (a progress notification). */
  | { kind: "progress"; revision: number }
  /** The start revision is compacted: history before `compactRevision` is gone. */
  | { kind: "compacted"; compactRevision: number }
  /** etcd cancelled the watch for another reason. */
  | { kind: "canceled"; reason: string };

/** WatchRequest{create_request=1 WatchCreateRequest{key=1, range_end=2, start_revision=3, progress_notify=4}}. */
function createRequest(startRevision: number): Buffer {
  // key "\0" with range_end "\0": every key (etcdctl's `--prefix ""`).
  const create = new MessageWriter()
    .bytes(1, Buffer.from([0]))
    .bytes(2, Buffer.from([0]))
    .varint(3, startRevision)
    .varint(4, true)
    .finish();
  return new MessageWriter().message(1, create).finish();
}

/** WatchRequest{progress_request=3 WatchProgressRequest{}}. */
const PROGRESS_REQUEST = new MessageWriter().message(3, Buffer.alloc(0)).finish();

/** Decodes WatchResponse{header=1 {revision=3}, created=3, canceled=4, compact_revision=5, cancel_reason=6, events=11}. */
function decodeWatchResponse(buf: Buffer): WatchMessage | null {
  let headerRevision = 0;
  let created = false;
  let canceled = false;
  let compactRevision = 0;
  let reason = "";
  const events: { revision: number; raw: Buffer }[] = [];
  const r = new ProtoReader(buf);
  while (r.next()) {
    switch (r.field) {
      case 1: {
        const h = r.message();
        while (h.next()) if (h.field === 3) headerRevision = h.signed();
        break;
      }
      case 3:
        created = r.value !== 0;
        break;
      case 4:
        canceled = r.value !== 0;
        break;
      case 5:
        compactRevision = r.signed();
        break;
      case 6:
        reason = r.string();
        break;
      case 11: {
        const raw = r.bytes();
        events.push({ revision: eventRevision(raw), raw });
        break;
      }
    }
  }
  if (compactRevision > 0) return { kind: "compacted", compactRevision };
  if (canceled) return { kind: "canceled", reason: reason || "cancelled by etcd" };
  if (events.length > 0) return { kind: "events", events };
  if (created) return null;
  return { kind: "progress", revision: headerRevision };
}

/** The mod revision of a raw event, without decoding the rest. */
function eventRevision(raw: Uint8Array): number {
  const r = new ProtoReader(raw);
  while (r.next()) {
    if (r.field !== 2) continue;
    const kv = r.message();
    while (kv.next()) if (kv.field === 3) return kv.signed();
  }
  throw new Error("malformed watch event: no mod revision");
}

/** A lease as LeaseTimeToLive reports it. */
export interface LeaseInfo {
  id: bigint;
  /** The TTL it was granted with, seconds. */
  grantedTtl: number;
}

/**
 * An open watch on the whole keyspace from a start revision, with the lease calls the log makes on the same
 * connection. `messages()` yields until the watch ends; it throws when the stream fails (connection lost).
 */
export class EtcdWatch {
  readonly endpoint: string;
  private readonly connection: EtcdConnection;
  private readonly call: ClientDuplexStream<Buffer, Buffer>;
  private closed = false;

  private constructor(connection: EtcdConnection, call: ClientDuplexStream<Buffer, Buffer>) {
    this.connection = connection;
    this.endpoint = connection.endpoint;
    this.call = call;
  }

  /**
   * Connects (each endpoint in turn) and creates the watch from `startRevision`. `signal` cuts the connecting
   * only: once open, the watch is the caller's to close (the log drains it first, up to etcd's revision).
   */
  static async open(
    options: EtcdSourceOptions,
    startRevision: number,
    signal?: AbortSignal,
  ): Promise<EtcdWatch> {
    return await connectEtcd(options, "accepted a watch", signal, async (connection) => {
      const call = connection.client.makeBidiStreamRequest(
        WATCH,
        (v: Buffer) => v,
        (v: Buffer) => v,
        connection.metadata,
      );
      const watch = new EtcdWatch(connection, call);
      call.write(createRequest(startRevision));
      return watch;
    });
  }

  /** Watch messages in order; ends when the watch is closed, throws when the stream fails. */
  async *messages(): AsyncGenerator<WatchMessage> {
    try {
      for await (const buf of this.call as AsyncIterable<Buffer>) {
        const msg = decodeWatchResponse(buf);
        if (msg) yield msg;
      }
    } catch (err) {
      if (this.closed) return;
      throw new Error(`watch on ${this.endpoint} failed: ${grpcReason(err as ServiceError)}`, { cause: err });
    }
    if (!this.closed) throw new Error(`watch on ${this.endpoint} ended unexpectedly`);
  }

  /** Asks for a progress notification: etcd answers with its current revision once the watch is in sync. */
  requestProgress(): void {
    if (!this.closed) this.call.write(PROGRESS_REQUEST);
  }

  /**
   * etcd's current revision, read linearizably (a Range of one absent key; the answer's header carries the
   * revision): every revision up to it was committed before this call.
   */
  async currentRevision(): Promise<number> {
    const res = await this.unary(
      RANGE,
      new MessageWriter()
        .bytes(1, Buffer.from([0]))
        .varint(3, 1)
        .finish(),
    );
    for (const f of readFields(res)) {
      if (f.field !== 1) continue;
      for (const h of readFields(f.bytes)) if (h.field === 3) return Number(BigInt.asIntN(64, h.int));
    }
    throw new Error(`Range on ${this.endpoint} answered without a revision`);
  }

  /** IDs of every lease that exists now (LeaseLeases). */
  async leases(): Promise<bigint[]> {
    const res = await this.unary(LEASE_LEASES, Buffer.alloc(0));
    const ids: bigint[] = [];
    for (const f of readFields(res)) {
      if (f.field !== 2) continue;
      for (const s of readFields(f.bytes)) if (s.field === 1) ids.push(BigInt.asIntN(64, s.int));
    }
    return ids;
  }

  /** The lease's granted TTL, or null when it no longer exists (LeaseTimeToLive answers TTL -1). */
  async lease(id: bigint): Promise<LeaseInfo | null> {
    const res = await this.unary(LEASE_TTL, new MessageWriter().varint(1, id).finish());
    let ttl = -1n;
    let granted = 0n;
    for (const f of readFields(res)) {
      if (f.field === 3) ttl = BigInt.asIntN(64, f.int);
      else if (f.field === 4) granted = BigInt.asIntN(64, f.int);
    }
    if (ttl < 0n) return null;
    return { id, grantedTtl: Number(granted) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.cancel();
    this.connection.client.close();
  }

  private async unary(method: string, req: Buffer): Promise<Buffer> {
    return await new Promise((resolve, reject) => {
      this.connection.client.makeUnaryRequest(
        method,
        (v: Buffer) => v,
        (v: Buffer) => v,
        req,
        this.connection.metadata,
        { deadline: Date.now() + 30_000 },
        (err, res) =>
          err || !res
            ? reject(new Error(`${method.split("/").pop()} on ${this.endpoint} failed: ${grpcReason(err)}`))
            : resolve(res),
      );
    });
  }
}
