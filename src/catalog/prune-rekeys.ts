/**
 * What `prune` does with the journal (`<key>.rekey`) and rewritten copies (`<key>.rekey-new.<run>`) a rekey leaves
 * beside a backup (src/catalog/rekey-journal.ts). A running rekey writes them too, so nothing is touched while the
 * newest of them is younger than prune's grace period (the one killed uploads get): they are shown as
 * "rekey in progress", and a backup retention would delete is kept meanwhile. Once older:
 * - beside a backup that stays, the rekey is resolved the way the next `rekey` would: finished when the object
 *   already carries the journal's new header (the journal's manifest is written), undone when it still carries
 *   the old one (the copies and the journal go), and copies without a journal (a rekey killed before its copy was
 *   verified) are removed; the backup reads whole at every step;
 * - beside a backup prune deletes, they go with it (copies first, the journal after the object and manifest);
 * - beside a backup that is gone, they are removed;
 * - a journal that cannot be read, or an object carrying neither of its headers, is left for a person, with why.
 * The revision log's segments (`rekey --log`) are resolved the same way; prune removes segments after this
 * (src/point-in-time/prune-log.ts), so what a removed segment leaves goes in the next prune, as `orphaned`.
 */
import { errorChain } from "../errors.ts";
import { parseLogKey, SEGMENT_MANIFEST_SUFFIX } from "../point-in-time/names.ts";
import type { ObjectInfo, Store } from "../store/store.ts";
import type { CatalogEntry } from "./catalog.ts";
import { manifestKey, parseBackupKey } from "./names.ts";
import {
  journalKey,
  newestRekeyPart,
  objectHeaderState,
  type RekeyLeftover,
  readJournal,
  recoverInterruptedRekey,
} from "./rekey-journal.ts";

/**
 * - `in progress`: younger than the grace period; a rekey may be running; nothing is touched;
 * - `finish`: the object carries the new header: the journal's manifest is written, then copies and journal go;
 * - `undo`: the object still carries the old header: copies and journal go, the backup keeps its old recipients;
 * - `clean`: copies without a journal (killed before verifying its copy): they go, the backup is unchanged;
 * - `with backup`: the backup is deleted by retention, and these with it;
 * - `orphaned`: the backup is gone; these go;
 * - `check`: the journal cannot be read or the object carries neither of its headers: left for a person.
 */
export type RekeyResolution =
  | "in progress"
  | "finish"
  | "undo"
  | "clean"
  | "with backup"
  | "orphaned"
  | "check";

export interface RekeyCleanup {
  /** The object the rekey was rewriting: a backup's, or a segment of the revision log. */
  key: string;
  kind: "backup" | "log segment";
  cluster: string;
  /** The backup's time (from its name); absent for a log segment. */
  time?: Date;
  /** The manifest that describes the object (the one a finished rekey writes). */
  manifestKey: string;
  journal?: ObjectInfo;
  staging: ObjectInfo[];
  /** Age of the newest journal or copy, milliseconds. */
  ageMs: number;
  /** `keep`: `in progress`, `check`, or held by the store; `resolve`: everything else. */
  action: "keep" | "resolve";
  resolution: RekeyResolution;
  /** For `check`: why a person has to look. */
  problem?: string;
  /** Why a cleanup old enough to go is kept: the store holds one of its objects. */
  hold?: string;
  /** The journal's run (for `finish` and `undo`): only that run's journal is resolved. */
  run?: string;
  /** After a real run. */
  result?: "finished" | "undone" | "removed" | "deleted" | "failed" | "left";
}

/** The keys of a cleanup, copies first: what goes when the whole of it is removed. */
export function rekeyKeys(c: Pick<RekeyCleanup, "journal" | "staging">): string[] {
  return [...c.staging.map((o) => o.key), ...(c.journal ? [c.journal.key] : [])];
}

/** Bytes the copies and journal take. */
export function rekeyBytes(c: Pick<RekeyCleanup, "journal" | "staging">): number {
  return c.staging.reduce((n, o) => n + o.size, 0) + (c.journal?.size ?? 0);
}

/**
 * The leftovers of rekeys whose object is a backup's or a log segment's (other tools' `.rekey` files are left
 * alone), of `cluster` when given, with what prune does about each, given which backups it deletes. Reads each
 * old journal and the first bytes of its object (to say finish or undo, in dry runs too). Oldest first.
 */
export async function planRekeyCleanups(
  store: Store,
  leftovers: Iterable<RekeyLeftover>,
  entries: readonly CatalogEntry[],
  deleting: ReadonlySet<string>,
  now: Date,
  graceMs: number,
  cluster: string | undefined,
): Promise<RekeyCleanup[]> {
  const byKey = new Map(entries.filter((e) => !e.temporary).map((e) => [e.key, e]));
  const out: RekeyCleanup[] = [];
  for (const leftover of leftovers) {
    const target = rekeyTarget(leftover.key);
    if (!target || (cluster !== undefined && target.cluster !== cluster)) continue;
    const ageMs = now.getTime() - newestRekeyPart(leftover).getTime();
    const base = { key: leftover.key, ...target, staging: leftover.staging, ageMs };
    const c: RekeyCleanup = {
      ...base,
      ...(leftover.journal ? { journal: leftover.journal } : {}),
      action: "keep",
      resolution: "in progress",
    };
    out.push(c);
    if (ageMs < graceMs) continue;
    const exists =
      target.kind === "backup"
        ? byKey.get(leftover.key)?.object !== undefined
        : (await store.stat(leftover.key)) !== null;
    if (!exists) {
      c.action = "resolve";
      c.resolution = "orphaned";
    } else if (deleting.has(leftover.key)) {
      c.action = "resolve";
      c.resolution = "with backup";
    } else if (
      leftover.journal &&
      (target.kind === "backup"
        ? byKey.get(leftover.key)?.manifestObject === undefined
        : (await store.stat(target.manifestKey)) === null)
    ) {
      // Finishing would write the first manifest of an object nobody completed: never make that look whole.
      c.resolution = "check";
      c.problem = `the object has no manifest, so its rekey cannot be finished or undone safely; verify it, then remove ${rekeyKeys(c).join(", ")} by hand`;
    } else {
      Object.assign(c, await resolutionFor(store, leftover));
    }
  }
  return out.sort((a, b) => b.ageMs - a.ageMs);
}

/** What the rekeyed object is, from its name; null for a name that is neither a backup's nor a log segment's. */
function rekeyTarget(key: string): Pick<RekeyCleanup, "kind" | "cluster" | "time" | "manifestKey"> | null {
  const name = parseBackupKey(key);
  if (name) return { kind: "backup", cluster: name.cluster, time: name.time, manifestKey: manifestKey(key) };
  const log = parseLogKey(key);
  if (log?.kind !== "segment") return null;
  return { kind: "log segment", cluster: log.cluster, manifestKey: `${key}${SEGMENT_MANIFEST_SUFFIX}` };
}

/** Finish, undo or clean for an object that stays, or `check` with the problem. */
async function resolutionFor(
  store: Store,
  leftover: RekeyLeftover,
): Promise<Pick<RekeyCleanup, "action" | "resolution" | "problem" | "run">> {
  if (!leftover.journal) return { action: "resolve", resolution: "clean" };
  const journal = await readJournal(store, leftover.key);
  if (!journal) {
    return {
      action: "keep",
      resolution: "check",
      problem: `the rekey journal ${journalKey(leftover.key)} cannot be read; verify the backup, then remove the journal by hand`,
    };
  }
  let state: Awaited<ReturnType<typeof objectHeaderState>>;
  try {
    state = await objectHeaderState(store, leftover.key, journal);
  } catch (err) {
    return {
      action: "keep",
      resolution: "check",
      problem: `cannot read the object: ${errorChain(err).join(": ")}`,
    };
  }
  if (state === "other") {
    return {
      action: "keep",
      resolution: "check",
      problem: `the object carries neither header named by its rekey journal (changed during the rekey); verify it before removing ${journalKey(leftover.key)} by hand`,
    };
  }
  return { action: "resolve", resolution: state === "to" ? "finish" : "undo", run: journal.run };
}

/**
 * Resolves one planned cleanup of a backup that stays (`finish`, `undo`, `clean`) or is gone (`orphaned`); those
 * `with backup` are deleted with their backup by prune. Only copies older than `stagedBefore` are removed, and
 * only the journal of the run planned on. Records the result; returns whether it succeeded, pushing the failure.
 */
export async function resolveRekeyCleanup(
  store: Store,
  c: RekeyCleanup,
  stagedBefore: Date,
  failures: { key: string; error: string }[],
): Promise<boolean> {
  try {
    switch (c.resolution) {
      case "finish":
      case "undo": {
        const done = await recoverInterruptedRekey(store, c.key, c.manifestKey, {
          ...(c.run !== undefined ? { run: c.run } : {}),
          stagedBefore,
        });
        // null: the journal went or changed since the plan (a rekey ran meanwhile and owns what is there now).
        c.result = done === "finished" ? "finished" : done === "undone" ? "undone" : "left";
        return true;
      }
      case "clean":
      case "orphaned":
        // The listed keys only: a copy written since the plan belongs to a rekey that started meanwhile.
        for (const key of rekeyKeys(c)) await store.delete(key);
        c.result = c.resolution === "clean" ? "removed" : "deleted";
        return true;
      default:
        return true;
    }
  } catch (err) {
    c.result = "failed";
    failures.push({ key: c.journal?.key ?? c.key, error: errorChain(err).join(": ") });
    return false;
  }
}
