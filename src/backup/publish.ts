import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { PENDING_SUFFIX } from "../catalog/catalog.ts";
import { type Manifest, serializeManifest } from "../catalog/manifest.ts";
import { backupKey, manifestKey, parseBackupKey } from "../catalog/names.ts";
import { Hinted } from "../errors.ts";
import { COALESCE_BYTES } from "../stages/coalesce.ts";
import { readSmallObject } from "../store/small-object.ts";
import { isAlreadyExists, type Store } from "../store/store.ts";

/** Names tried after the first (each one second later) before a save gives up: enough for a burst of saves. */
export const MAX_NAME_ATTEMPTS = 30;

/**
 * On a store whose creates are not exclusive (an S3 service that ignores `If-None-Match`), how long a claim waits
 * before reading its marker back: a concurrent writer that checked the name before our marker existed has written
 * its own marker by then, unless its write took longer than this.
 */
export const DEFAULT_CLAIM_SETTLE_MS = 1000;

/**
 * TEST ONLY: when set to a number, the process kills itself with SIGKILL once that many stored bytes have passed,
 * so the crash tests (test/e2e/crash-save.test.ts) can stop a save at a chosen point. Never set it otherwise.
 */
export const TEST_KILL_ENV = "ETCD_BACKUP_TEST_KILL_AFTER_BYTES";

export interface PublishOptions {
  store: Store;
  /** The name the backup wants (its time is the start of the run); a later second is used when it is taken. */
  key: string;
  started: Date;
  /** Opens the object's content; called once the name is claimed. */
  openBody: () => Readable;
  /** Builds the manifest once the object is stored (may throw: the object is then removed). */
  makeManifest: () => Manifest;
  signal?: AbortSignal;
  /** Releases what the caller opened before (a source stream) when publishing fails before the body runs. */
  abandon?: () => void;
  /** See DEFAULT_CLAIM_SETTLE_MS. */
  claimSettleMs?: number;
  /**
   * The sha256 (hex) of the object's bytes when a stage of the body already hashes exactly those bytes (a
   * save with neither compression nor encryption: the trailer check's hash of the whole snapshot), called
   * once the object is stored: the object is then counted but not hashed a second time.
   */
  objectSha256?: () => string;
}

export interface Published {
  /** The name the backup got: the one asked for, or a later second when that was taken. */
  key: string;
  manifestKey: string;
  manifest: Manifest;
}

/** What a `.pending` marker holds: whose claim it is. */
interface Claim {
  run: string;
  started: string;
  pid: number;
  host: string;
}

/**
 * Publishes one backup with the discipline every kind of backup follows, so that nothing half-done ever looks
 * complete and no run's backup replaces another's:
 * 1. claim a name: create `<key>.pending` holding this run's id, only if absent (an exclusive create where the
 *    store has one). A name whose object, manifest or marker exists is taken; the next second is tried, up to
 *    MAX_NAME_ATTEMPTS names, then the save fails with one line. Moved names keep talos-backup's form
 *    `<cluster>-<RFC 3339 UTC, whole seconds>.snap...`, so every reader of that format still parses them;
 * 2. store the object, again only if absent (atomically: the store never shows a partial object);
 * 3. write the manifest `<key>.json` last, only if absent, with the run id and the stored object's size and
 *    sha256, which every reader checks against the object; if that fails, remove the object again;
 * 4. remove the marker.
 * On failure everything this run wrote is removed (best effort) and the error is rethrown.
 *
 * Where the store cannot make creates exclusive (`PutResult.exclusive === false`: an S3 service that ignores
 * `If-None-Match`), a claim is only a check-then-write, so the claim is read back after `claimSettleMs` and again
 * before the manifest is written, and the object's owner and size are checked after it. What remains there: two
 * runs whose marker writes land more than `claimSettleMs` apart yet each after the other's check can both believe
 * they hold the name; the later object then replaces the earlier, one run's check fails (it exits non-zero), and
 * if both checks passed before the replacement, the manifest no longer matches the object, which `list` (size)
 * or `verify` (sha256, owner) reports. A conditional-write service (AWS S3, MinIO) or a directory has no such
 * window.
 */
export async function publishBackup(options: PublishOptions): Promise<Published> {
  const { store, signal } = options;
  const run = randomBytes(16).toString("hex");
  let claimed: { key: string; exclusive: boolean };
  try {
    claimed = await claimName(options, run);
  } catch (err) {
    options.abandon?.();
    throw err;
  }
  const { key, exclusive } = claimed;
  const marker = `${key}${PENDING_SUFFIX}`;
  const ownsMarker = async () => exclusive || (await readClaim(store, marker))?.run === run;
  const ownsObject = async (size: number) => {
    if (exclusive) return true;
    const info = await store.stat(key);
    return info !== null && info.size === size && (info.owner === undefined || info.owner === run);
  };
  const cleanup = async (objectSize: number | undefined) => {
    if (objectSize !== undefined && (await ownsObject(objectSize).catch(() => false)))
      await store.delete(key).catch(() => {});
    if (await ownsMarker().catch(() => false)) await store.delete(marker).catch(() => {});
  };

  const tap = new StoredTap(testKillAfterBytes(), options.objectSha256 === undefined);
  const body = options.openBody();
  let size: number;
  try {
    // pipeline, not pipe: a failing body must fail the tap too, or the store would wait for its end forever.
    const stored = await store.put(
      key,
      pipeline(body, tap, () => {}),
      {
        ...(signal ? { signal } : {}),
        contentType: "application/octet-stream",
        ifAbsent: true,
        owner: run,
        immutable: true,
      },
    );
    size = stored.size;
  } catch (err) {
    body.destroy();
    tap.destroy();
    await cleanup(undefined);
    if (isAlreadyExists(err)) {
      throw new Hinted(
        `a backup named ${key} appeared in ${store.location} while this save ran (another tool writing the same name)`,
        "nothing was overwritten; run the save again",
        { cause: err },
      );
    }
    throw err;
  }
  if (tap.bytes !== size) {
    await cleanup(size);
    throw new Error(`the store took ${size} bytes of ${key} but ${tap.bytes} were sent`);
  }

  let manifest: Manifest;
  const mkey = manifestKey(key);
  try {
    if (!exclusive && !((await ownsMarker()) && (await ownsObject(size)))) {
      throw new Hinted(
        `another save took the name ${key} in ${store.location} at the same time`,
        "run the save again; the store does not honour conditional writes, so names can only be checked",
      );
    }
    const sha256 = options.objectSha256 ? options.objectSha256() : tap.sha256();
    manifest = { ...options.makeManifest(), run, object: { size, sha256 } };
    await store.put(mkey, textStream(serializeManifest(manifest)), {
      ...(signal ? { signal } : {}),
      contentType: "application/json",
      ifAbsent: true,
      owner: run,
      // Locked like its object (same date, as both are written seconds apart): a backup under lock keeps the
      // manifest that makes it verifiable, and prune deletes the pair once both dates have passed.
      immutable: true,
    });
  } catch (err) {
    await cleanup(size);
    if (err instanceof Hinted) throw err;
    throw new Error("write manifest", { cause: err });
  }
  if (!exclusive && !(await ownsObject(size))) {
    // Replaced after our checks: the manifest no longer describes the object, and readers will say so.
    throw new Hinted(
      `the object ${key} in ${store.location} was replaced by another writer after this save stored it`,
      "run `etcd-backup verify` on it and save again; the store does not honour conditional writes",
    );
  }
  if (await ownsMarker().catch(() => false)) await store.delete(marker).catch(() => {});
  return { key, manifestKey: mkey, manifest };
}

/** Claims the first free name from `options.key` on, one second apart; returns it and whether it is exclusive. */
async function claimName(options: PublishOptions, run: string): Promise<{ key: string; exclusive: boolean }> {
  const { store, signal } = options;
  const wanted = parseBackupKey(options.key);
  const candidates = wanted
    ? Array.from({ length: MAX_NAME_ATTEMPTS }, (_, i) =>
        backupKey({ ...wanted, time: new Date(wanted.time.getTime() + i * 1000) }),
      )
    : [options.key];
  const claim: Claim = {
    run,
    started: options.started.toISOString(),
    pid: process.pid,
    host: hostname(),
  };
  for (const key of candidates) {
    signal?.throwIfAborted();
    const marker = `${key}${PENDING_SUFFIX}`;
    let exclusive: boolean;
    try {
      if ((await store.stat(key)) || (await store.stat(manifestKey(key)))) continue;
      const result = await store.put(marker, textStream(JSON.stringify(claim)), {
        ifAbsent: true,
        owner: run,
        contentType: "application/json",
      });
      exclusive = result.exclusive === true;
    } catch (err) {
      if (isAlreadyExists(err)) continue;
      throw new Error(`cannot write to ${store.location}`, { cause: err });
    }
    try {
      // Someone else's marker now: they hold the name; theirs stays untouched.
      if (!exclusive) {
        await sleep(options.claimSettleMs ?? DEFAULT_CLAIM_SETTLE_MS, undefined, signal ? { signal } : {});
        if ((await readClaim(store, marker))?.run !== run) continue;
      }
      // An object written by a tool that does not claim names (talos-backup) may have landed meanwhile.
      if (!(await store.stat(key))) return { key, exclusive };
    } catch (err) {
      // Aborted or the store failed while the claim was being checked: our marker must not outlive us.
      if (exclusive || (await readClaim(store, marker))?.run === run)
        await store.delete(marker).catch(() => {});
      throw err;
    }
    await store.delete(marker).catch(() => {});
  }
  throw new Hinted(
    `no free name for this backup in ${store.location}: ${candidates[0]} and the ${candidates.length - 1} names after it are taken`,
    "other saves of this cluster are running, or killed ones left markers: see `etcd-backup list`, clean with `etcd-backup prune`",
  );
}

async function readClaim(store: Store, marker: string): Promise<Partial<Claim> | null> {
  try {
    return JSON.parse(await readSmallObject(store, marker)) as Partial<Claim>;
  } catch {
    return null;
  }
}

function testKillAfterBytes(): number | undefined {
  const value = process.env[TEST_KILL_ENV];
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Counts and hashes the bytes handed to the store: the manifest's `object` describes exactly those. Without
 * `hashing` it only counts (the caller has their hash from an earlier stage).
 */
class StoredTap extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");
  private readonly hashing: boolean;
  private readonly killAfter: number | undefined;

  constructor(killAfter: number | undefined, hashing: boolean) {
    super({ highWaterMark: COALESCE_BYTES });
    this.killAfter = killAfter;
    this.hashing = hashing;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.hashing) this.hash.update(chunk);
    if (this.killAfter !== undefined && this.bytes >= this.killAfter) process.kill(process.pid, "SIGKILL");
    callback(null, chunk);
  }

  sha256(): string {
    return this.hash.digest("hex");
  }
}

function textStream(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}
