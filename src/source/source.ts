import type { Readable } from "node:stream";

/** What the source knows about the snapshot it is streaming; recorded in the manifest. */
export interface SnapshotOrigin {
  /** "etcd", "talos" or "file". */
  kind: string;
  /** The endpoint (or file path) that served the snapshot. Never holds a credential. */
  endpoint: string;
  /** The etcd member that produced it, in hex, when the source tells. */
  member?: string;
  /** Talos node the snapshot was taken from, when addressed through an endpoint. */
  node?: string;
  /** The etcd server's version when the source tells (etcd >= 3.6 sends it). */
  etcdVersion?: string;
}

/** An open snapshot: the raw bytes of etcd's db followed by its 32-byte sha256 trailer. */
export interface SnapshotStream {
  stream: Readable;
  origin: SnapshotOrigin;
  /** Expected total size when the source announces it (etcd's remaining_bytes of the first message). */
  expectedSize?: number;
}

/**
 * Where snapshots come from. `open` connects (trying alternatives such as several endpoints in turn) and
 * resolves once the snapshot has started to flow; errors after that point surface on the stream, and the
 * stream is destroyed when `signal` aborts.
 */
export interface SnapshotSource {
  /** A description for messages, e.g. "etcd at 127.0.0.1:2379, 127.0.0.1:22379". */
  readonly description: string;
  open(signal?: AbortSignal): Promise<SnapshotStream>;
  /**
   * Releases what `open` made outside this process (the kubeconfig source's helper pod), once the stream is done
   * or failed; front ends await it before they exit. Sources that make nothing have none.
   */
  close?(): Promise<void>;
}
