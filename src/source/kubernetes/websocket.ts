import { createHash, randomBytes } from "node:crypto";

/*
 * The part of WebSocket (RFC 6455) that Kubernetes' exec streams use: binary messages, ping/pong and close, no
 * extensions. Shared by the client (the exec stream) and the test's stand-in kubelet (the server side).
 */

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A fresh Sec-WebSocket-Key. */
export function newWebSocketKey(): string {
  return randomBytes(16).toString("base64");
}

/** The Sec-WebSocket-Accept a server answers for a key. */
export function acceptFor(key: string): string {
  return createHash("sha1")
    .update(key + GUID)
    .digest("base64");
}

/** One frame; a client masks what it sends (RFC 6455 5.3), a server does not. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (lenBytes === 0 ? len : lenBytes === 2 ? 126 : 127);
  if (lenBytes === 2) head.writeUInt16BE(len, 2);
  if (lenBytes === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  key.copy(head, 2 + lenBytes);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([head, masked]);
}

export interface WebSocketMessage {
  opcode: number;
  payload: Buffer;
}

/** The largest message accepted: exec streams send at most a few tens of KiB per message. */
const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Reassembles frames from a byte stream into messages (data messages joined across continuation frames; control
 * frames returned as they come). Throws on a protocol violation.
 */
export class FrameReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private fragments: Buffer[] = [];
  private fragmentOpcode = -1;

  /** Feeds bytes; returns the complete messages they finished. */
  push(chunk: Buffer): WebSocketMessage[] {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const out: WebSocketMessage[] = [];
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) return out;
      const { fin, opcode, payload } = frame;
      if (opcode >= 0x8) {
        out.push({ opcode, payload });
        continue;
      }
      if (opcode !== OPCODE.continuation) {
        if (this.fragmentOpcode !== -1) throw new Error("websocket: new message inside a fragmented one");
        this.fragmentOpcode = opcode;
      } else if (this.fragmentOpcode === -1) {
        throw new Error("websocket: continuation frame without a message");
      }
      this.fragments.push(payload);
      if (fin) {
        const joined = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
        out.push({ opcode: this.fragmentOpcode, payload: joined });
        this.fragments = [];
        this.fragmentOpcode = -1;
      }
    }
  }

  private nextFrame(): { fin: boolean; opcode: number; payload: Buffer } | undefined {
    // The header first (at most 14 bytes), then the frame only once all of it is here: a frame that arrives in
    // many TLS records is joined once, not at every record.
    const head = this.peek(Math.min(14, this.bufferedBytes));
    if (head.length < 2) return undefined;
    const fin = (head[0]! & 0x80) !== 0;
    if ((head[0]! & 0x70) !== 0) throw new Error("websocket: reserved bits set (no extension was agreed)");
    const opcode = head[0]! & 0x0f;
    const masked = (head[1]! & 0x80) !== 0;
    let len = head[1]! & 0x7f;
    let offset = 2;
    if (len === 126) {
      if (head.length < 4) return undefined;
      len = head.readUInt16BE(2);
      offset = 4;
    } else if (len === 127) {
      if (head.length < 10) return undefined;
      const big = head.readBigUInt64BE(2);
      if (big > BigInt(MAX_MESSAGE)) throw new Error("websocket: frame too large");
      len = Number(big);
      offset = 10;
    }
    if (len > MAX_MESSAGE) throw new Error("websocket: frame too large");
    const maskAt = offset;
    if (masked) offset += 4;
    if (this.bufferedBytes < offset + len) return undefined;
    const frame = this.take(offset + len);
    const payload = Buffer.from(frame.subarray(offset));
    if (masked) {
      const key = frame.subarray(maskAt, maskAt + 4);
      for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    }
    return { fin, opcode, payload };
  }

  /** The first `n` buffered bytes, without consuming them. */
  private peek(n: number): Buffer {
    const first = this.buffered[0];
    if (!first) return Buffer.alloc(0);
    if (first.length >= n) return first.subarray(0, n);
    const parts: Buffer[] = [];
    let have = 0;
    for (const b of this.buffered) {
      if (have >= n) break;
      parts.push(b);
      have += b.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  }

  /** Removes and returns the first `n` buffered bytes (n <= bufferedBytes). */
  private take(n: number): Buffer {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const b = this.buffered[0]!;
      if (b.length <= need) {
        parts.push(b);
        this.buffered.shift();
        need -= b.length;
      } else {
        parts.push(b.subarray(0, need));
        this.buffered[0] = b.subarray(need);
        need = 0;
      }
    }
    this.bufferedBytes -= n;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }
}
