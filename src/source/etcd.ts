import { Readable } from "node:stream";
import type { ChannelCredentials, Client, Metadata, ServiceError } from "@grpc/grpc-js";
import { describeError, Hinted } from "../errors.ts";
import { waitConnected } from "../grpc/connect.ts";
import { grpcReason } from "../grpc/failure.ts";
import { grpc, loadGrpc } from "../grpc/load.ts";
import { channelCredentials, insecureCredentials, loadTlsFiles, type TlsFiles } from "../grpc/tls.ts";
import { tryInTurn } from "../grpc/try-in-turn.ts";
import { fieldString, MessageWriter, readFields } from "../protobuf/wire.ts";
import { handOverMessage } from "../stages/buffer-handover.ts";
import { COALESCE_BYTES } from "../stages/coalesce.ts";
import type { SnapshotSource, SnapshotStream } from "./source.ts";
import { abortSnapshotStart } from "./start-abort.ts";

/** How to reach etcd: etcdctl's flags. */
export interface EtcdSourceOptions {
  /** `host:port`, `http://host:port` or `https://host:port`; tried in order until one serves a snapshot. */
  endpoints: string[];
  tls: TlsFiles;
  /** How long connecting to one endpoint may take. */
  dialTimeoutMs: number;
  /** etcd user and password, when etcd has authentication enabled. */
  user?: { name: string; password: string };
}

const SNAPSHOT = "/etcdserverpb.Maintenance/Snapshot";
const AUTHENTICATE = "/etcdserverpb.Auth/Authenticate";

interface SnapshotResponse {
  memberId?: bigint;
  remaining: bigint;
  blob: Buffer;
  version?: string;
}

/** SnapshotResponse{header=1 ResponseHeader{cluster_id=1, member_id=2, revision=3}, remaining_bytes=2, blob=3, version=4}. */
function decodeSnapshotResponse(buf: Buffer): SnapshotResponse {
  const out: SnapshotResponse = { remaining: 0n, blob: Buffer.alloc(0) };
  // The message's memory may be freed by the stage that copies the blob out (Coalesce, in a save).
  handOverMessage(buf);
  for (const f of readFields(buf)) {
    if (f.field === 1) {
      for (const h of readFields(f.bytes)) if (h.field === 2) out.memberId = h.int;
    } else if (f.field === 2) out.remaining = f.int;
    else if (f.field === 3) out.blob = Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.length);
    else if (f.field === 4) out.version = fieldString(f.bytes);
  }
  return out;
}

/** Splits an endpoint into the gRPC target and whether its scheme asks for TLS. */
export function parseEndpoint(endpoint: string): { target: string; tls: boolean | undefined } {
  const m = /^(https?|unixs?):\/\/(.+?)\/?$/.exec(endpoint.trim());
  if (!m) return { target: endpoint.trim(), tls: undefined };
  const scheme = m[1]!;
  if (scheme.startsWith("unix")) return { target: `unix:${m[2]}`, tls: scheme === "unixs" };
  return { target: m[2]!, tls: scheme === "https" };
}

/** Snapshots from etcd's gRPC Maintenance API, trying each endpoint in turn. */
export class EtcdSource implements SnapshotSource {
  readonly description: string;
  readonly options: EtcdSourceOptions;

  constructor(options: EtcdSourceOptions) {
    if (options.endpoints.length === 0) throw new Hinted("no etcd endpoint given", "pass --endpoints");
    this.options = options;
    this.description = `etcd at ${options.endpoints.join(", ")}`;
  }

  async open(signal?: AbortSignal): Promise<SnapshotStream> {
    return await connectEtcd(this.options, "served a snapshot", signal, async (c) => {
      try {
        return await startSnapshot(c.client, c.endpoint, c.metadata, signal);
      } catch (err) {
        c.client.close();
        throw err;
      }
    });
  }
}

/** One connected etcd client: the endpoint it reached and the call metadata (auth token) to send. */
export interface EtcdConnection {
  client: Client;
  endpoint: string;
  metadata: Metadata;
}

/**
 * Connects to each endpoint in turn (TLS, dial timeout, authentication) and runs `use` on the first
 * connection; the first result wins. `use` owns the connected client and closes it when done or failed (a
 * client that could not connect is closed here). `what` completes the error "no etcd endpoint <what>".
 */
export async function connectEtcd<T>(
  options: EtcdSourceOptions,
  what: string,
  signal: AbortSignal | undefined,
  use: (connection: EtcdConnection) => Promise<T>,
): Promise<T> {
  if (options.endpoints.length === 0) throw new Hinted("no etcd endpoint given", "pass --endpoints");
  const { tls } = options;
  const wantsTls = Boolean(tls.caFile || tls.certFile || tls.keyFile || tls.insecureSkipVerify || tls.pem);
  const pem = wantsTls ? await loadTlsFiles(tls) : undefined;
  await loadGrpc();
  return await tryInTurn(
    options.endpoints,
    async (endpoint) => {
      const { target, tls: schemeTls } = parseEndpoint(endpoint);
      const useTls = schemeTls ?? wantsTls;
      const creds = useTls ? channelCredentials(pem ?? (await loadTlsFiles(tls))) : insecureCredentials();
      const connection = await connectEndpoint(options, endpoint, target, creds, signal);
      return await use(connection);
    },
    {
      signal,
      describe: (endpoint, err) => `${endpoint}: ${describeError(err)}`,
      allFailed: (failures) =>
        new Hinted(
          `no etcd endpoint ${what} (${failures.join("; ")})`,
          "check --endpoints, the TLS flags (--cacert, --cert, --key) and that etcd is running",
        ),
    },
  );
}

async function connectEndpoint(
  options: EtcdSourceOptions,
  endpoint: string,
  target: string,
  creds: ChannelCredentials,
  signal?: AbortSignal,
): Promise<EtcdConnection> {
  const client = new (grpc().Client)(target, creds, {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // What etcd may send ahead of our reading (HTTP/2 flow control): 1 MiB, 32 of its 32 KiB snapshot
    // messages. 4 MiB held 3 MiB more while the pipeline was paused, at the same speed on loopback.
    "grpc-node.flow_control_window": 1024 * 1024,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.initial_reconnect_backoff_ms": 200,
  });
  try {
    await waitConnected(client, options.dialTimeoutMs, "/etcdserverpb.Maintenance/Status", signal);
    const metadata = new (grpc().Metadata)();
    if (options.user) metadata.set("token", await authenticate(client, options.user));
    return { client, endpoint, metadata };
  } catch (err) {
    client.close();
    throw err;
  }
}

async function authenticate(client: Client, user: { name: string; password: string }): Promise<string> {
  const req = new MessageWriter().bytes(1, user.name).bytes(2, user.password).finish();
  return await new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      AUTHENTICATE,
      (v: Buffer) => v,
      (v: Buffer) => v,
      req,
      { deadline: Date.now() + 10_000 },
      (err, res) => {
        if (err || !res) {
          reject(
            new Hinted(`etcd authentication as ${user.name} failed: ${grpcReason(err)}`, "check --user"),
          );
          return;
        }
        for (const f of readFields(res)) if (f.field === 2) return resolve(fieldString(f.bytes));
        reject(new Error("etcd authentication returned no token"));
      },
    );
  });
}

/** Starts the Snapshot call and resolves when its first message has arrived. */
async function startSnapshot(
  client: Client,
  endpoint: string,
  metadata: Metadata,
  signal?: AbortSignal,
): Promise<SnapshotStream> {
  const call = client.makeServerStreamRequest(
    SNAPSHOT,
    (v: Buffer) => v,
    decodeSnapshotResponse,
    Buffer.alloc(0),
    metadata,
  );
  let remaining: bigint | undefined;
  let started = false;
  let ended = false;
  const stream = new Readable({
    highWaterMark: COALESCE_BYTES,
    read() {
      call.resume();
    },
    destroy(err, callback) {
      if (!ended) call.cancel();
      client.close();
      callback(err);
    },
  });
  const abort = abortSnapshotStart(stream, signal, () => started);

  return await new Promise<SnapshotStream>((resolve, reject) => {
    abort.failStartWith(reject);
    call.on("data", (msg: SnapshotResponse) => {
      remaining = msg.remaining;
      if (!started) {
        started = true;
        const total = msg.remaining + BigInt(msg.blob.length);
        resolve({
          stream,
          origin: {
            kind: "etcd",
            endpoint,
            ...(msg.memberId ? { member: msg.memberId.toString(16) } : {}),
            ...(msg.version ? { etcdVersion: msg.version } : {}),
          },
          // etcd counts the db only; the sha256 trailer follows in a last message.
          expectedSize: Number(total) + 32,
        });
      }
      if (msg.blob.length > 0 && !stream.push(msg.blob)) call.pause();
    });
    call.on("error", (err: ServiceError) => {
      ended = true;
      const error = new Error(`snapshot stream from ${endpoint} failed: ${grpcReason(err)}`, { cause: err });
      if (!started) reject(error);
      else stream.destroy(error);
    });
    call.on("end", () => {
      ended = true;
      if (!started) {
        reject(new Error("etcd ended the snapshot without sending data"));
      } else if (remaining !== 0n) {
        stream.destroy(
          new Error(`snapshot stream from ${endpoint} ended with ${remaining} bytes still to come`),
        );
      } else {
        stream.push(null);
      }
      client.close();
    });
  });
}
