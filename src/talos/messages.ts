/**
 * The few Talos machine API messages we exchange, hand-written on the protobuf wire format (field numbers from
 * siderolabs/talos api/common/common.proto and api/machine/machine.proto).
 */
import { fieldString, MessageWriter, readFields } from "../protobuf/wire.ts";
import { handOverMessage } from "../stages/buffer-handover.ts";

export const ETCD_SNAPSHOT = "/machine.MachineService/EtcdSnapshot";
export const ETCD_RECOVER = "/machine.MachineService/EtcdRecover";
export const BOOTSTRAP = "/machine.MachineService/Bootstrap";
export const SERVICE_LIST = "/machine.MachineService/ServiceList";

/** common.Metadata{hostname=1, error=2, status=3}: set by apid when it proxied to several nodes. */
export interface ResponseMetadata {
  hostname?: string;
  error?: string;
}

function decodeMetadata(buf: Uint8Array): ResponseMetadata {
  const out: ResponseMetadata = {};
  for (const f of readFields(buf)) {
    if (f.field === 1) out.hostname = fieldString(f.bytes);
    else if (f.field === 2) out.error = fieldString(f.bytes);
  }
  return out;
}

/** common.Data{metadata=1, bytes=2}. `bytes` is a view of the received buffer. */
export interface DataMessage {
  metadata?: ResponseMetadata;
  bytes: Buffer;
}

/** Decodes a common.Data message without copying its bytes. */
export function decodeData(buf: Buffer): DataMessage {
  const out: DataMessage = { bytes: Buffer.alloc(0) };
  // The message's memory may be freed by the stage that copies its bytes out (Coalesce, in a save).
  handOverMessage(buf);
  for (const f of readFields(buf)) {
    if (f.field === 1) out.metadata = decodeMetadata(f.bytes);
    else if (f.field === 2) out.bytes = Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
  }
  return out;
}

/** Encodes a common.Data carrying `bytes` (no metadata: clients never send it). */
export function encodeData(bytes: Uint8Array): Buffer {
  return new MessageWriter().bytes(2, bytes).finish();
}

/** machine.BootstrapRequest{recover_etcd=1, recover_skip_hash_check=2}. */
export function encodeBootstrapRequest(req: { recoverEtcd: boolean; recoverSkipHashCheck: boolean }): Buffer {
  return new MessageWriter().varint(1, req.recoverEtcd).varint(2, req.recoverSkipHashCheck).finish();
}

/**
 * Errors a multi-message reply carries in its messages' metadata (BootstrapResponse{messages=1 Bootstrap{metadata=1}},
 * EtcdRecoverResponse likewise). Empty when every message is clean.
 */
export function replyErrors(buf: Buffer): string[] {
  const errors: string[] = [];
  for (const m of readFields(buf)) {
    if (m.field !== 1) continue;
    for (const f of readFields(m.bytes)) {
      if (f.field === 1) {
        const md = decodeMetadata(f.bytes);
        if (md.error) errors.push(md.hostname ? `${md.hostname}: ${md.error}` : md.error);
      }
    }
  }
  return errors;
}

/** machine.ServiceInfo{id=1, state=2, events=3, health=4 ServiceHealth{unknown=1, healthy=2, last_message=3}}. */
export interface ServiceInfo {
  id: string;
  state: string;
  healthy?: boolean;
  lastMessage?: string;
  /** The newest event's message (ServiceEvents{events=1 ServiceEvent{msg=1, state=2}}). */
  lastEvent?: string;
}

/** A node's reply in ServiceListResponse{messages=1 ServiceList{metadata=1, services=2}}. */
export interface ServiceListReply {
  metadata?: ResponseMetadata;
  services: ServiceInfo[];
}

/** Decodes a ServiceListResponse. */
export function decodeServiceListResponse(buf: Buffer): ServiceListReply[] {
  const replies: ServiceListReply[] = [];
  for (const m of readFields(buf)) {
    if (m.field !== 1) continue;
    const reply: ServiceListReply = { services: [] };
    for (const f of readFields(m.bytes)) {
      if (f.field === 1) reply.metadata = decodeMetadata(f.bytes);
      else if (f.field === 2) reply.services.push(decodeServiceInfo(f.bytes));
    }
    replies.push(reply);
  }
  return replies;
}

function decodeServiceInfo(buf: Uint8Array): ServiceInfo {
  const info: ServiceInfo = { id: "", state: "" };
  for (const f of readFields(buf)) {
    if (f.field === 1) info.id = fieldString(f.bytes);
    else if (f.field === 2) info.state = fieldString(f.bytes);
    else if (f.field === 3) {
      for (const e of readFields(f.bytes)) {
        if (e.field !== 1) continue;
        for (const ev of readFields(e.bytes)) if (ev.field === 1) info.lastEvent = fieldString(ev.bytes);
      }
    } else if (f.field === 4) {
      for (const h of readFields(f.bytes)) {
        if (h.field === 2) info.healthy = h.int !== 0n;
        else if (h.field === 3) info.lastMessage = fieldString(h.bytes);
      }
    }
  }
  return info;
}
