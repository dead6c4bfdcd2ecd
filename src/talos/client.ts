import { once } from "node:events";
import { isIP } from "node:net";
import type {
  ChannelCredentials,
  Client,
  ClientReadableStream,
  ClientWritableStream,
  Metadata,
  ServiceError,
} from "@grpc/grpc-js";
import { Hinted } from "../errors.ts";
import { DIAL_ERROR, waitConnected } from "../grpc/connect.ts";
import { grpcReason } from "../grpc/failure.ts";
import { grpc, loadGrpc, GrpcStatus as status } from "../grpc/load.ts";
import { channelCredentials } from "../grpc/tls.ts";
import { tryInTurn } from "../grpc/try-in-turn.ts";
import {
  checkClientCertificate,
  describeClientCertificate,
  endpointTarget,
  type TalosContext,
} from "./config.ts";
import {
  BOOTSTRAP,
  type DataMessage,
  decodeData,
  decodeServiceListResponse,
  ETCD_RECOVER,
  ETCD_SNAPSHOT,
  encodeBootstrapRequest,
  encodeData,
  replyErrors,
  SERVICE_LIST,
  type ServiceListReply,
} from "./messages.ts";

/** The roles apid accepts for each method we call (machined's authorization rules). */
export const METHOD_ROLES: Record<string, string[]> = {
  [ETCD_SNAPSHOT]: ["os:admin", "os:operator", "os:etcd:backup"],
  [SERVICE_LIST]: ["os:admin", "os:operator", "os:reader"],
  [ETCD_RECOVER]: ["os:admin"],
  [BOOTSTRAP]: ["os:admin"],
};

/** How to reach apid: a talosconfig context, with talosctl's `-e` override applied by the caller. */
export interface TalosConnectionOptions {
  context: TalosContext;
  /** Endpoints tried in turn (`-e`, else the context's). */
  endpoints: string[];
  /** How long connecting to one endpoint may take. */
  dialTimeoutMs?: number;
}

/** A connected channel to one endpoint. */
export interface TalosChannel {
  client: Client;
  endpoint: string;
}

const identity = (v: Buffer) => v;

/**
 * A client for the few Talos machine API calls we make, over mTLS with the talosconfig's CA and client
 * certificate. A target node is addressed through the endpoint with the `node` gRPC metadata, as talosctl does
 * for one node; no metadata means the endpoint's own node answers.
 */
export class TalosClient {
  readonly endpoints: string[];
  readonly roles: string[];
  private readonly pem: { ca: Buffer; cert: Buffer; key: Buffer };
  private readonly dialTimeoutMs: number;

  /** Throws `Hinted` when no endpoint is known or the client certificate is expired. */
  constructor(options: TalosConnectionOptions) {
    if (options.endpoints.length === 0) {
      throw new Hinted(
        `talosconfig context ${options.context.name} has no endpoints`,
        "pass -e host[:port] or add endpoints with talosctl config endpoint",
      );
    }
    const cert = describeClientCertificate(options.context.cert);
    checkClientCertificate(cert);
    this.roles = cert.roles;
    this.endpoints = options.endpoints;
    this.dialTimeoutMs = options.dialTimeoutMs ?? 10_000;
    this.pem = { ca: options.context.ca, cert: options.context.cert, key: options.context.key };
  }

  /**
   * Runs `fn` on the first endpoint that connects, trying them in turn; an endpoint that cannot be reached or
   * answers UNAVAILABLE passes to the next. Any other failure (a refusal, a precondition) is final. The channel
   * is closed after `fn` settles unless `keepOpen` says `fn`'s result still uses it.
   */
  async withEndpoint<T>(
    fn: (channel: TalosChannel) => Promise<T>,
    signal?: AbortSignal,
    keepOpen = false,
  ): Promise<T> {
    await loadGrpc();
    // node:tls (~20 ms to import) is needed only here, with gRPC.
    const { checkServerIdentity } = await import("node:tls");
    return await tryInTurn(
      this.endpoints,
      async (endpoint) => {
        const target = endpointTarget(endpoint);
        const { credentials, options } = this.channelFor(target, checkServerIdentity);
        const client = new (grpc().Client)(target, credentials, {
          "grpc.max_receive_message_length": 64 * 1024 * 1024,
          "grpc.keepalive_time_ms": 30_000,
          "grpc.initial_reconnect_backoff_ms": 200,
          ...options,
        });
        let ok = false;
        try {
          await waitConnected(client, this.dialTimeoutMs, SERVICE_LIST, signal);
          const result = await fn({ client, endpoint });
          ok = true;
          return result;
        } finally {
          if (!ok || !keepOpen) client.close();
        }
      },
      {
        signal,
        isFatal: (err) => !isUnreachable(err),
        describe: (endpoint, err) => `${endpoint}: ${reasonOf(err)}`,
        allFailed: (failures) =>
          new Hinted(
            `no Talos endpoint answered (${failures.join("; ")})`,
            "check -e/--endpoints or the talosconfig endpoints, and that apid listens on port 50000",
          ),
      },
    );
  }

  /**
   * mTLS credentials for one target. Talos endpoints are mostly IP addresses, which TLS may not carry as SNI
   * (Node warns, RFC 6066): for those the SNI is a fixed placeholder and the certificate is checked against the
   * IP itself (its IP SANs), so verification stays as strict as for a name.
   */
  private channelFor(
    target: string,
    checkServerIdentity: typeof import("node:tls").checkServerIdentity,
  ): { credentials: ChannelCredentials; options: Record<string, string> } {
    const host = target.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
    if (isIP(host) === 0) return { credentials: channelCredentials(this.pem), options: {} };
    const credentials = grpc().credentials.createSsl(this.pem.ca, this.pem.key, this.pem.cert, {
      checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
    });
    return { credentials, options: { "grpc.ssl_target_name_override": IP_SNI_PLACEHOLDER } };
  }

  /** gRPC metadata addressing `node` through the endpoint (none: the endpoint's node). */
  static metadataFor(node: string | undefined): Metadata {
    const md = new (grpc().Metadata)();
    if (node) md.set("node", node);
    return md;
  }

  /** Turns a gRPC failure of `method` into one clear line, with a hint for refusals. */
  explain(method: string, err: unknown, node: string | undefined): Error {
    const e = err as ServiceError;
    const short = method.slice(method.lastIndexOf("/") + 1);
    const where = node ? ` on node ${node}` : "";
    if (e?.code === status.PERMISSION_DENIED || e?.code === status.UNAUTHENTICATED) {
      const has = this.roles.length ? this.roles.join(", ") : "none";
      return new Hinted(
        `the Talos API refused ${short}${where}: ${e.details || "not authorized"}`,
        `${short} needs role ${(METHOD_ROLES[method] ?? ["os:admin"]).join(" or ")}; the talosconfig certificate has ${has}`,
      );
    }
    if (err instanceof Error && typeof e.code !== "number") return err;
    const wrapped = new Error(`${short}${where} failed: ${reasonOf(err)}`, { cause: err });
    (wrapped as Error & { code?: number }).code = e.code;
    return wrapped;
  }

  /** Lists the services of `node` (ServiceList). */
  async serviceList(channel: TalosChannel, node: string | undefined): Promise<ServiceListReply[]> {
    return await new Promise((resolve, reject) => {
      channel.client.makeUnaryRequest(
        SERVICE_LIST,
        identity,
        identity,
        Buffer.alloc(0),
        TalosClient.metadataFor(node),
        { deadline: Date.now() + 30_000 },
        (err, res) => {
          if (err || !res) return reject(this.explain(SERVICE_LIST, err ?? new Error("no reply"), node));
          try {
            resolve(decodeServiceListResponse(res));
          } catch (decodeErr) {
            reject(new Error("ServiceList reply is malformed", { cause: decodeErr }));
          }
        },
      );
    });
  }

  /** Starts EtcdSnapshot on `node`; the reply is a stream of common.Data. */
  etcdSnapshot(channel: TalosChannel, node: string | undefined): ClientReadableStream<DataMessage> {
    return channel.client.makeServerStreamRequest(
      ETCD_SNAPSHOT,
      identity,
      decodeData,
      Buffer.alloc(0),
      TalosClient.metadataFor(node),
    );
  }

  /** Calls Bootstrap on `node`. */
  async bootstrap(
    channel: TalosChannel,
    node: string | undefined,
    req: { recoverEtcd: boolean; recoverSkipHashCheck: boolean },
  ): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      channel.client.makeUnaryRequest(
        BOOTSTRAP,
        identity,
        identity,
        encodeBootstrapRequest(req),
        TalosClient.metadataFor(node),
        { deadline: Date.now() + 60_000 },
        (err, res) => {
          if (err || !res) return reject(this.explain(BOOTSTRAP, err ?? new Error("no reply"), node));
          const errors = replyErrors(res);
          if (errors.length) return reject(new Error(`Bootstrap on node ${node}: ${errors.join("; ")}`));
          resolve();
        },
      );
    });
  }

  /**
   * Uploads a snapshot to `node` with EtcdRecover (a client stream of common.Data), honouring backpressure, and
   * resolves with the bytes sent once the node acknowledged the whole upload. When `snapshot` fails (a check at
   * its end) or `signal` aborts, the call is cancelled before it is half-closed, so the node never acknowledges
   * the upload and discards what it received.
   */
  async etcdRecover(
    channel: TalosChannel,
    node: string | undefined,
    snapshot: AsyncIterable<Buffer>,
    signal?: AbortSignal,
  ): Promise<number> {
    let settled = false;
    let call: ClientWritableStream<Buffer> | undefined;
    const done = new Promise<void>((resolve, reject) => {
      call = channel.client.makeClientStreamRequest(
        ETCD_RECOVER,
        identity,
        identity,
        TalosClient.metadataFor(node),
        {},
        (err, res) => {
          settled = true;
          if (err || !res) return reject(this.explain(ETCD_RECOVER, err ?? new Error("no reply"), node));
          const errors = replyErrors(res);
          if (errors.length) return reject(new Error(`EtcdRecover on node ${node}: ${errors.join("; ")}`));
          resolve();
        },
      );
    });
    done.catch(() => {});
    const stream = call as ClientWritableStream<Buffer>;
    const onAbort = () => stream.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    let bytes = 0;
    try {
      for await (const chunk of snapshot) {
        for (let off = 0; off < chunk.length; off += UPLOAD_CHUNK) {
          if (settled) break;
          const piece = chunk.subarray(off, off + UPLOAD_CHUNK);
          bytes += piece.length;
          if (!stream.write(encodeData(piece))) {
            await Promise.race([once(stream, "drain"), done]);
          }
        }
        if (settled) break;
      }
    } catch (err) {
      stream.cancel();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (!settled) stream.end();
    await done;
    signal?.throwIfAborted();
    return bytes;
  }
}

/** SNI sent to an endpoint given by IP address (never used to verify anything). */
const IP_SNI_PLACEHOLDER = "apid.talos.invalid";

/** Bytes per common.Data message on upload; well under gRPC's default 4 MiB message limit. */
const UPLOAD_CHUNK = 1 << 20;

function reasonOf(err: unknown): string {
  return grpcReason(err as ServiceError) || (err as Error)?.message || String(err);
}

/** True for failures that say "this endpoint cannot be reached", where trying the next one makes sense. */
function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || (err as Error)?.name === DIAL_ERROR
  );
}
