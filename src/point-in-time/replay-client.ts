/**
 * The calls the replay makes on its private etcd: one Txn per original revision (checked against the
 * revision it must produce), lease grants with their recorded IDs, keep-alives so that no lease expires while
 * the replay runs, and revokes at the end. Messages are encoded by hand (etcdserverpb field numbers).
 */
import type { Client, ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { grpcReason } from "../grpc/failure.ts";
import { grpc, loadGrpc } from "../grpc/load.ts";
import { MessageWriter, readFields } from "../protobuf/wire.ts";
import { type DecodedEvent, EVENT_PUT } from "../source/etcd-watch.ts";

const TXN = "/etcdserverpb.KV/Txn";
const RANGE = "/etcdserverpb.KV/Range";
const LEASE_GRANT = "/etcdserverpb.Lease/LeaseGrant";
const LEASE_REVOKE = "/etcdserverpb.Lease/LeaseRevoke";
const LEASE_LEASES = "/etcdserverpb.Lease/LeaseLeases";
const LEASE_TTL = "/etcdserverpb.Lease/LeaseTimeToLive";
const LEASE_KEEPALIVE = "/etcdserverpb.Lease/LeaseKeepAlive";

/** gRPC FAILED_PRECONDITION: etcd's answer to granting a lease ID that exists. */
const FAILED_PRECONDITION = 9;

/** RequestOp{request_put=2 PutRequest{key=1, value=2, lease=3}} or RequestOp{request_delete_range=3 DeleteRangeRequest{key=1}}. */
function requestOp(event: DecodedEvent): Buffer {
  if (event.type === EVENT_PUT) {
    const put = new MessageWriter().bytes(1, event.key).bytes(2, event.value).varint(3, event.lease).finish();
    return new MessageWriter().message(2, put).finish();
  }
  return new MessageWriter().message(3, new MessageWriter().bytes(1, event.key).finish()).finish();
}

/** A compare of a replay guard: the key's mod revision equals `modRevision`, or the key does not exist. */
export type GuardCompare = { key: Buffer; modRevision: number } | { key: Buffer; absent: true };

/**
 * Compare{result=1 EQUAL(0), target=2 VERSION(0)|MOD(2), key=3, version=4 | mod_revision=6}. The zero of
 * the oneof is written explicitly (proto3 would drop it), so that etcd sees which value is compared.
 */
function compare(c: GuardCompare): Buffer {
  if ("absent" in c) {
    return Buffer.concat([new MessageWriter().bytes(3, c.key).finish(), Buffer.from([0x20, 0x00])]);
  }
  return new MessageWriter().varint(2, 2).bytes(3, c.key).varint(6, c.modRevision).finish();
}

function tagged(field: number, body: Buffer): Buffer {
  return new MessageWriter().message(field, body).finish();
}

function headerRevision(res: Buffer): number {
  for (const f of readFields(res))
    if (f.field === 1) for (const h of readFields(f.bytes)) if (h.field === 3) return Number(h.int);
  return 0;
}

export class ReplayClient {
  private readonly client: Client;
  private readonly kept = new Set<bigint>();
  private keepAlive: ClientDuplexStream<Buffer, Buffer> | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(client: Client) {
    this.client = client;
  }

  static async connect(endpoint: string): Promise<ReplayClient> {
    await loadGrpc();
    const client = new (grpc().Client)(
      endpoint.replace(/^http:\/\//, ""),
      grpc().credentials.createInsecure(),
      {
        "grpc.max_send_message_length": 128 << 20,
        "grpc.max_receive_message_length": 128 << 20,
      },
    );
    return new ReplayClient(client);
  }

  /** etcd's current revision (the header of a one-key Range). */
  async revision(): Promise<number> {
    const req = new MessageWriter()
      .bytes(1, Buffer.from([0]))
      .bytes(2, Buffer.from([0]))
      .varint(3, 1)
      .varint(8, true)
      .finish();
    return headerRevision(await this.unary(RANGE, req));
  }

  /**
   * Applies the events of one original revision as one Txn, only if every compare of `guard` holds (none:
   * unconditionally). Returns whether it was applied and the revision etcd reports.
   */
  async applyRevision(
    events: DecodedEvent[],
    guard: GuardCompare[] = [],
  ): Promise<{ applied: boolean; revision: number }> {
    const parts: Buffer[] = [];
    for (const c of guard) parts.push(tagged(1, compare(c)));
    for (const e of events) parts.push(tagged(2, requestOp(e)));
    const res = await this.unary(TXN, Buffer.concat(parts));
    let applied = false;
    for (const f of readFields(res)) if (f.field === 2) applied = f.int !== 0n;
    return { applied, revision: headerRevision(res) };
  }

  /** IDs of the leases that exist. */
  async leases(): Promise<bigint[]> {
    const ids: bigint[] = [];
    for (const f of readFields(await this.unary(LEASE_LEASES, Buffer.alloc(0)))) {
      if (f.field !== 2) continue;
      for (const s of readFields(f.bytes)) if (s.field === 1) ids.push(BigInt.asIntN(64, s.int));
    }
    return ids;
  }

  /** Grants lease `id` with `ttl` seconds; false when it exists already. */
  async grant(id: bigint, ttl: number): Promise<boolean> {
    try {
      await this.unary(LEASE_GRANT, new MessageWriter().varint(1, ttl).varint(2, id).finish());
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === FAILED_PRECONDITION) return false;
      throw err;
    }
  }

  /** The keys attached to a lease, or null when the lease does not exist. */
  async leaseKeys(id: bigint): Promise<Buffer[] | null> {
    const res = await this.unary(LEASE_TTL, new MessageWriter().varint(1, id).varint(2, true).finish());
    let ttl = -1n;
    const keys: Buffer[] = [];
    for (const f of readFields(res)) {
      if (f.field === 3) ttl = BigInt.asIntN(64, f.int);
      else if (f.field === 5) keys.push(Buffer.from(f.bytes));
    }
    return ttl < 0n ? null : keys;
  }

  async revoke(id: bigint): Promise<void> {
    this.kept.delete(id);
    await this.unary(LEASE_REVOKE, new MessageWriter().varint(1, id).finish());
  }

  /** Keeps `id` alive (every second) until `stopKeepAlive`. */
  keep(id: bigint): void {
    this.kept.add(id);
    if (this.timer) return;
    this.keepAlive = this.client.makeBidiStreamRequest(
      LEASE_KEEPALIVE,
      (v: Buffer) => v,
      (v: Buffer) => v,
    );
    this.keepAlive.on("data", () => {});
    this.keepAlive.on("error", () => {});
    const tick = () => {
      for (const lease of this.kept) this.keepAlive?.write(new MessageWriter().varint(1, lease).finish());
    };
    tick();
    this.timer = setInterval(tick, 1000);
  }

  stopKeepAlive(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.keepAlive?.cancel();
    this.keepAlive = undefined;
  }

  close(): void {
    this.stopKeepAlive();
    this.client.close();
  }

  private async unary(method: string, req: Buffer): Promise<Buffer> {
    return await new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        method,
        (v: Buffer) => v,
        (v: Buffer) => v,
        req,
        { deadline: Date.now() + 60_000 },
        (err: ServiceError | null, res?: Buffer) => {
          if (err || !res) {
            const e = new Error(`${method.split("/").pop()} on the replay etcd failed: ${grpcReason(err)}`);
            (e as { code?: number }).code = err?.code;
            reject(e);
          } else resolve(res);
        },
      );
    });
  }
}
