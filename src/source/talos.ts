import { Readable } from "node:stream";
import type { ServiceError } from "@grpc/grpc-js";
import { describeError, Hinted } from "../errors.ts";
import { tryInTurn } from "../grpc/try-in-turn.ts";
import { type TalosChannel, TalosClient, type TalosConnectionOptions } from "../talos/client.ts";
import type { DataMessage } from "../talos/messages.ts";
import { ETCD_SNAPSHOT } from "../talos/messages.ts";
import type { SnapshotSource, SnapshotStream } from "./source.ts";
import { abortSnapshotStart } from "./start-abort.ts";

/** How to reach etcd through the Talos API. */
export interface TalosSourceOptions extends TalosConnectionOptions {
  /**
   * Nodes to take the snapshot from, tried in turn (each addressed alone with the `node` metadata: apid's
   * multi-node `nodes` mode would interleave several nodes' snapshots in one stream). Empty: the endpoint's node.
   */
  nodes: string[];
}

/**
 * Snapshots from `machine.MachineService/EtcdSnapshot` (a server stream of common.Data holding exactly what
 * etcd's Maintenance.Snapshot produces, sha256 trailer included), as talosctl etcd snapshot and talos-backup
 * take them. Nodes and endpoints are tried in turn until one starts streaming.
 */
export class TalosSource implements SnapshotSource {
  readonly description: string;
  private readonly client: TalosClient;
  private readonly nodes: string[];

  /** Throws `Hinted` when the connection settings cannot work (no endpoint, expired certificate). */
  constructor(options: TalosSourceOptions) {
    this.client = new TalosClient(options);
    this.nodes = options.nodes;
    const nodes = options.nodes.length ? ` node ${options.nodes.join(", ")} via` : "";
    this.description = `Talos${nodes} ${options.endpoints.join(", ")}`;
  }

  async open(signal?: AbortSignal): Promise<SnapshotStream> {
    const targets = this.nodes.length ? this.nodes : [undefined];
    return await tryInTurn(
      targets,
      (node) => this.client.withEndpoint((ch) => this.start(ch, node, signal), signal, true),
      {
        signal,
        isFatal: (err) => targets.length === 1 || err instanceof Hinted,
        describe: (node, err) => `${node}: ${describeError(err)}`,
        allFailed: (failures) =>
          new Hinted(
            `no Talos node served a snapshot (${failures.join("; ")})`,
            "check -n/--nodes: they must be control plane nodes running etcd",
          ),
      },
    );
  }

  /** Starts EtcdSnapshot and resolves once the first bytes arrived. */
  private async start(
    ch: TalosChannel,
    node: string | undefined,
    signal?: AbortSignal,
  ): Promise<SnapshotStream> {
    const call = this.client.etcdSnapshot(ch, node);
    let started = false;
    let ended = false;
    const stream = new Readable({
      highWaterMark: 1 << 20,
      read() {
        call.resume();
      },
      destroy(err, callback) {
        if (!ended) call.cancel();
        ch.client.close();
        callback(err);
      },
    });
    const abort = abortSnapshotStart(stream, signal, () => started);
    const where = node ? `node ${node} via ${ch.endpoint}` : ch.endpoint;

    return await new Promise<SnapshotStream>((resolve, reject) => {
      abort.failStartWith(reject);
      const begin = () => {
        if (started) return;
        started = true;
        resolve({ stream, origin: { kind: "talos", endpoint: ch.endpoint, ...(node ? { node } : {}) } });
      };
      call.on("data", (msg: DataMessage) => {
        if (msg.metadata?.error) {
          const err = new Error(
            `EtcdSnapshot on ${msg.metadata.hostname || where} failed: ${msg.metadata.error}`,
          );
          ended = true;
          call.cancel();
          if (!started) reject(err);
          else stream.destroy(err);
          return;
        }
        if (msg.bytes.length === 0) return;
        begin();
        if (!stream.push(msg.bytes)) call.pause();
      });
      call.on("error", (err: ServiceError) => {
        if (ended) return;
        ended = true;
        const error = this.client.explain(ETCD_SNAPSHOT, err, node);
        const wrapped = started ? new Error(`snapshot stream from ${where} failed`, { cause: error }) : error;
        if (!started) reject(wrapped);
        else stream.destroy(wrapped);
      });
      call.on("end", () => {
        if (ended) return;
        ended = true;
        if (!started) reject(new Error(`EtcdSnapshot on ${where} ended without sending data`));
        else stream.push(null);
      });
    });
  }
}
