import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { TrailerResult } from "../stages/trailer.ts";
import type { Store } from "../store/store.ts";
import { type TalosChannel, TalosClient, type TalosConnectionOptions } from "../talos/client.ts";
import type { ServiceInfo } from "../talos/messages.ts";
import { openPlainSnapshot } from "./plain-stream.ts";

/** The etcd service state in which a Talos node accepts a snapshot to recover from: waiting for bootstrap. */
export const RECOVERABLE_ETCD_STATE = "Preparing";

export interface RestoreToTalosOptions extends TalosConnectionOptions {
  store: Store;
  entry: CatalogEntry;
  /** The control plane node to recover etcd on, addressed through the endpoints. */
  node: string;
  decrypt?: DecryptionFactory;
  /** Pass Bootstrap's recover_skip_hash_check (only for a copied db file without a valid trailer). */
  skipHashCheck?: boolean;
  /** Check everything, read and verify the whole backup, but neither upload nor bootstrap. */
  dryRun?: boolean;
  signal?: AbortSignal;
  onProgress?: (storedBytes: number) => void;
}

export interface RestoreToTalosResult extends TrailerResult {
  node: string;
  endpoint: string;
  /** The etcd service state seen before recovering. */
  etcdState: string;
  /** Bytes uploaded with EtcdRecover (0 on a dry run). */
  uploaded: number;
  dryRun: boolean;
}

/**
 * Recovers etcd on a Talos control plane node from a backup, as `talosctl bootstrap --recover-from` does:
 * 1. asks the node for its services (ServiceList) and refuses unless etcd is `Preparing`, i.e. the node is
 *    waiting to be bootstrapped;
 * 2. streams the backup (fetch, decrypt, decompress, trailer and manifest sha256 check) into EtcdRecover;
 * 3. calls Bootstrap with recover_etcd.
 *
 * The upload is streamed, not staged in a temporary file: the trailer check withholds the snapshot's last 32
 * bytes until the sha256 (and the manifest's) match, and on a mismatch the EtcdRecover call is cancelled before
 * it is half-closed, so the node never acknowledges a damaged upload and discards it; Bootstrap only follows a
 * verified, acknowledged upload. With `dryRun` the backup is read and verified in full but nothing is sent.
 */
export async function restoreToTalosNode(options: RestoreToTalosOptions): Promise<RestoreToTalosResult> {
  const client = new TalosClient(options);
  const { node, signal } = options;
  // EtcdRecover and Bootstrap are os:admin only; say so before touching the node rather than after an upload.
  if (!client.roles.includes("os:admin")) {
    throw new Hinted(
      `recovering etcd through the Talos API needs role os:admin; the talosconfig certificate has ${client.roles.join(", ") || "none"}`,
      "use the cluster's admin talosconfig (--talosconfig, --context)",
    );
  }
  return await client.withEndpoint(async (channel) => {
    const etcd = await etcdService(client, channel, node);
    checkRecoverable(etcd, node);
    const plain = await openPlainSnapshot(options.store, options.entry, {
      ...(options.decrypt ? { decrypt: options.decrypt } : {}),
      ...(signal ? { signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    let uploaded = 0;
    try {
      if (options.dryRun) {
        await pipeline(plain.stream, discard(), { ...(signal ? { signal } : {}) });
      } else {
        uploaded = await client.etcdRecover(channel, node, plain.stream, signal);
      }
    } catch (err) {
      plain.stream.destroy();
      throw new Error(options.dryRun ? "read backup" : `upload snapshot to node ${node}`, { cause: err });
    }
    const checked = plain.trailer.result;
    if (!checked) throw new Error("snapshot ended before its trailer was checked");
    if (!options.dryRun) {
      await client.bootstrap(channel, node, {
        recoverEtcd: true,
        // The database alone (no trailer) has nothing for etcd's hash check to check.
        recoverSkipHashCheck: (options.skipHashCheck ?? false) || !checked.hasTrailer,
      });
    }
    return {
      ...checked,
      node,
      endpoint: channel.endpoint,
      etcdState: etcd.state,
      uploaded,
      dryRun: options.dryRun ?? false,
    };
  }, signal);
}

async function etcdService(client: TalosClient, channel: TalosChannel, node: string): Promise<ServiceInfo> {
  const replies = await client.serviceList(channel, node);
  const failed = replies.find((r) => r.metadata?.error);
  if (failed) throw new Error(`ServiceList on node ${node} failed: ${failed.metadata?.error}`);
  const etcd = replies.flatMap((r) => r.services).find((s) => s.id === "etcd");
  if (!etcd) {
    throw new Hinted(
      `node ${node} runs no etcd service`,
      "recover on a control plane node (talosctl -n NODE get machinetype)",
    );
  }
  return etcd;
}

/** Refuses unless etcd waits for bootstrap; the message says what was seen and what to check next. */
function checkRecoverable(etcd: ServiceInfo, node: string): void {
  if (etcd.state === RECOVERABLE_ETCD_STATE) return;
  const detail = etcd.lastEvent ? ` (${etcd.lastEvent})` : "";
  const hint =
    etcd.state === "Running"
      ? "etcd still runs there: check with `talosctl -n NODE etcd members` and `talosctl -n NODE service etcd` that the cluster is really lost; to recover, wipe the EPHEMERAL partition of every control plane node (talosctl reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL) and wait for etcd to show Preparing"
      : "wait until `talosctl -n NODE service etcd` shows Preparing (the node waits for bootstrap), then retry";
  throw new Hinted(
    `etcd on node ${node} is ${etcd.state || "in an unknown state"}${detail}, not ${RECOVERABLE_ETCD_STATE}: it cannot be recovered now`,
    hint,
  );
}

function discard(): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}
