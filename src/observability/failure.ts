import type { SnapshotSource } from "../source/source.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import { withOverrides } from "../store/delegate.ts";
import type { Store } from "../store/store.ts";

/**
 * Why a run failed, as a metric label: a small closed set, never free text (an error message could carry a host
 * name, a key or worse into a label and explode the series count).
 * - `source`: etcd or the Talos API could not be reached, refused, or broke off the snapshot stream;
 * - `integrity`: the snapshot's sha256 trailer did not match, or compression failed on its bytes;
 * - `encryption`: the age stage failed;
 * - `store`: the store refused or failed the upload or the manifest;
 * - `verify`: the new backup did not pass the structural check;
 * - `test_restore`: the new backup did not restore into a working etcd;
 * - `prune`: retention could not list or delete;
 * - `aborted`: the run was stopped (shutdown);
 * - `other`: none of the above.
 */
export const FAILURE_REASONS = [
  "source",
  "integrity",
  "encryption",
  "store",
  "verify",
  "test_restore",
  "prune",
  "aborted",
  "other",
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** The parts of a save, wrapped so that a failure can be traced to the stage it started in. */
export interface WatchedSave {
  source: SnapshotSource;
  store: Store;
  encryption: EncryptionPlan | null;
  /** Where a failed save went wrong. */
  reason(err: unknown, signal?: AbortSignal): FailureReason;
}

/**
 * Wraps a save's source, store and encryption so that `reason` can tell which of them failed first. A stream
 * torn down because another stage failed reports a premature close or an abort; those are not counted as its
 * own failure.
 */
export function watchSave(parts: {
  source: SnapshotSource;
  store: Store;
  encryption: EncryptionPlan | null;
}): WatchedSave {
  let sourceFailed = false;
  let encryptionFailed = false;
  let upstreamFailed = false;
  const own = (err: unknown) => {
    const code = (err as { code?: string } | null)?.code;
    const name = (err as { name?: string } | null)?.name;
    return code !== "ERR_STREAM_PREMATURE_CLOSE" && code !== "ABORT_ERR" && name !== "AbortError";
  };
  const source: SnapshotSource = {
    description: parts.source.description,
    async open(signal) {
      try {
        const snap = await parts.source.open(signal);
        snap.stream.on("error", (err) => {
          if (own(err)) sourceFailed = true;
        });
        return snap;
      } catch (err) {
        sourceFailed = true;
        throw err;
      }
    },
  };
  const inner = parts.store;
  const store = withOverrides(inner, {
    put(key, body, options) {
      body.on("error", (err) => {
        if (own(err)) upstreamFailed = true;
      });
      return inner.put(key, body, options);
    },
  });
  const encryption: EncryptionPlan | null = parts.encryption
    ? {
        recipients: parts.encryption.recipients,
        createStage: () => {
          const stage = parts.encryption!.createStage();
          stage.on("error", (err) => {
            if (own(err)) encryptionFailed = true;
          });
          return stage;
        },
      }
    : null;
  return {
    source,
    store,
    encryption,
    reason(_err, signal) {
      if (signal?.aborted) return "aborted";
      if (sourceFailed) return "source";
      if (encryptionFailed) return "encryption";
      if (upstreamFailed) return "integrity";
      return "store";
    },
  };
}
