/**
 * `rekey` over a store: which objects (one backup, every backup of the catalog or of one cluster, the revision
 * log's segments), what each one's recipients become (rekey-recipients.ts), and the rekey of each
 * (rekey.ts), or with `dryRun` only the plan. One object's failure does not stop the others under --all.
 */
import type { Identity } from "../age/index.ts";
import { isUsable, listBackups, readManifest, resolveBackup } from "../catalog/catalog.ts";
import { type Manifest, serializeManifest } from "../catalog/manifest.ts";
import { manifestKey } from "../catalog/names.ts";
import { describeError, UsageError } from "../errors.ts";
import { readLogCatalog } from "../point-in-time/catalog.ts";
import { readJson } from "../point-in-time/log-store.ts";
import { SEGMENT_MANIFEST_SUFFIX } from "../point-in-time/names.ts";
import type { SegmentManifest } from "../point-in-time/records.ts";
import type { Store } from "../store/store.ts";
import {
  openObjectHeader,
  type RekeyOptions,
  type RekeyOutcome,
  type RekeyTarget,
  recoverInterruptedRekey,
  rekeyObject,
} from "./rekey.ts";
import { fingerprint, planRecipients, type RecipientChange } from "./rekey-recipients.ts";

export interface RekeyRequest {
  store: Store;
  identities: Identity[];
  change: RecipientChange;
  /** One backup by name (as `list` prints it), or `all`. */
  backup?: string;
  all?: boolean;
  cluster?: string;
  /** Include the revision log's segments. */
  log?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  notice?: (line: string) => void;
  partCopy?: RekeyOptions["partCopy"];
  /** Called as each object is done, for progress lines. */
  onItem?: (item: RekeyItem) => void;
}

export interface RekeyItem {
  name: string;
  kind: "backup" | "log segment";
  action: "rekeyed" | "unchanged" | "would rekey" | "skipped" | "failed";
  /** Recipient fingerprints (public keys, post-quantum ones shortened). */
  before: string[];
  after: string[];
  reason?: string;
  /** An interrupted earlier rekey of this object that was finished or undone first. */
  recovered?: "finished" | "undone";
  outcome?: RekeyOutcome;
}

interface Candidate {
  name: string;
  kind: RekeyItem["kind"];
  /** Reads the manifest (again, after a recovery) and builds the target. */
  load(): Promise<RekeyTarget>;
  skip?: string;
}

function snapshotTarget(store: Store, key: string): () => Promise<RekeyTarget> {
  return async () => {
    const m: Manifest = await readManifest(store, key);
    if (m.encryption.kind !== "age")
      throw new UsageError(`${key} is not encrypted`, "rekey only changes age recipients");
    return {
      key,
      manifestKey: manifestKey(key),
      recipients: m.encryption.recipients,
      ...(m.object ? { objectSha256: m.object.sha256 } : {}),
      ...(m.run ? { owner: m.run } : {}),
      updatedManifest: (object, recipients) =>
        serializeManifest({
          ...m,
          sizes: { ...m.sizes, stored: object.size },
          object,
          encryption: { kind: "age", recipients },
        }),
    };
  };
}

function segmentTarget(store: Store, key: string): () => Promise<RekeyTarget> {
  return async () => {
    const mkey = `${key}${SEGMENT_MANIFEST_SUFFIX}`;
    const m: SegmentManifest = await readJson(store, mkey, "log-segment");
    return {
      key,
      manifestKey: mkey,
      recipients: m.encryption.recipients,
      updatedManifest: (object, recipients) =>
        `${JSON.stringify(
          { ...m, sizes: { ...m.sizes, stored: object.size }, encryption: { kind: "age", recipients } },
          null,
          2,
        )}\n`,
    };
  };
}

async function candidates(req: RekeyRequest): Promise<Candidate[]> {
  const { store } = req;
  const out: Candidate[] = [];
  if (req.backup) {
    const entry = await resolveBackup(store, req.backup, {
      ...(req.cluster ? { cluster: req.cluster } : {}),
    });
    if (!entry.manifest) {
      throw new UsageError(
        `backup ${entry.key} has no manifest, so its recipients are unknown`,
        "rekey works on backups saved by etcd-backup",
      );
    }
    if (!entry.encrypted)
      throw new UsageError(`backup ${entry.key} is not encrypted`, "rekey only changes age recipients");
    out.push({ name: entry.key, kind: "backup", load: snapshotTarget(store, entry.key) });
  } else if (req.all) {
    for (const entry of await listBackups(store)) {
      if (entry.temporary || (req.cluster && entry.cluster !== req.cluster)) continue;
      const c: Candidate = { name: entry.key, kind: "backup", load: snapshotTarget(store, entry.key) };
      if (!entry.encrypted) c.skip = "not encrypted";
      else if (!isUsable(entry)) c.skip = `${entry.state}${entry.problem ? `: ${entry.problem}` : ""}`;
      else if (!entry.manifest) c.skip = "no manifest (not saved by etcd-backup): its recipients are unknown";
      out.push(c);
    }
  }
  if (req.log) {
    for (const cluster of await readLogCatalog(store, req.cluster ? { cluster: req.cluster } : {})) {
      for (const chain of cluster.chains) {
        for (const seg of chain.segments) {
          if (seg.manifest.encryption.kind !== "age") continue;
          out.push({ name: seg.key, kind: "log segment", load: segmentTarget(store, seg.key) });
        }
      }
    }
  }
  return out;
}

/** Plans and (unless `dryRun`) runs the rekey; returns one item per object looked at. */
export async function runRekey(req: RekeyRequest): Promise<RekeyItem[]> {
  const { store } = req;
  const strict = Boolean(req.backup);
  const list = await candidates(req);
  if (list.length === 0) {
    throw new UsageError(
      `nothing to rekey in ${store.location}${req.cluster ? ` for cluster ${req.cluster}` : ""}`,
      "run `etcd-backup list` to see what is there",
    );
  }
  const items: RekeyItem[] = [];
  const removalsUsed = new Set<string>();
  const report = (item: RekeyItem) => {
    items.push(item);
    req.onItem?.(item);
  };
  for (const c of list) {
    req.signal?.throwIfAborted();
    const base = { name: c.name, kind: c.kind, before: [] as string[], after: [] as string[] };
    if (c.skip) {
      report({ ...base, action: "skipped", reason: c.skip });
      continue;
    }
    let recovered: "finished" | "undone" | null = null;
    try {
      if (!req.dryRun) {
        const mkey = c.kind === "backup" ? manifestKey(c.name) : `${c.name}${SEGMENT_MANIFEST_SUFFIX}`;
        recovered = await recoverInterruptedRekey(store, c.name, mkey);
      }
      const target = await c.load();
      const plan = planRecipients(c.name, target.recipients, req.change, strict);
      for (const r of plan.removed) removalsUsed.add(r);
      const item: RekeyItem = {
        ...base,
        before: target.recipients.map((r) => fingerprint(r.publicKey ?? r.kind)),
        after: plan.after.map((r) => fingerprint(r.publicKey ?? r.kind)),
        action: "unchanged",
        ...(recovered ? { recovered } : {}),
      };
      if (plan.unchanged) {
        report(item);
        continue;
      }
      if (req.dryRun) {
        // The identity is checked on the header alone: a dry run says whether the real run could open it.
        if (req.identities.length > 0) await openObjectHeader(store, target, req.identities);
        report({ ...item, action: "would rekey" });
        continue;
      }
      const outcome = await rekeyObject(target, {
        store,
        identities: req.identities,
        recipients: plan.after,
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.notice ? { notice: req.notice } : {}),
        ...(req.partCopy ? { partCopy: req.partCopy } : {}),
      });
      report({ ...item, action: "rekeyed", outcome });
    } catch (err) {
      if (strict || req.signal?.aborted) throw err;
      report({ ...base, action: "failed", reason: describeError(err), ...(recovered ? { recovered } : {}) });
    }
  }
  if (!strict) {
    // Not an error under --all: a rerun after an interrupted or partial rekey finds the key removed already.
    const unused = req.change.remove.filter((k) => !removalsUsed.has(k));
    for (const k of unused)
      req.notice?.(`note: ${fingerprint(k)} is not a recipient of any backup looked at`);
  }
  return items;
}
