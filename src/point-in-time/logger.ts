/**
 * The revision log: watches etcd's whole keyspace from a full backup's revision + 1 and writes every revision
 * into closed, encrypted segments (see segment-format.ts and names.ts).
 *
 * - A segment is closed every `segmentIntervalMs` and when it holds `segmentMaxBytes`; a crash loses only the
 *   segment still open, and a restart resumes at the last closed revision + 1 (etcd still has those
 *   revisions unless it compacted them, which is then a gap).
 * - Gaps are never hidden: when etcd compacted past the log's position, or revisions are missing from the
 *   watch, or the newest chain has a hole, the log closes what it has, takes a new full backup at once,
 *   writes a gap record and starts a new chain on that backup.
 * - A lost connection is not a gap: the watch is reopened from the last received revision + 1.
 */

import { listBackups } from "../catalog/catalog.ts";
import { describeError } from "../errors.ts";
import type { EtcdSourceOptions } from "../source/etcd.ts";
import { decodeEvent, EtcdWatch, EVENT_PUT, type WatchMessage } from "../source/etcd-watch.ts";
import type { EncryptionPlan } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { type Chain, readLogCatalog } from "./catalog.ts";
import type { LogMetrics } from "./log-metrics.ts";
import { deleteObject, writeJson, writeSegment } from "./log-store.ts";
import { chainKey, gapKey, headKey } from "./names.ts";
import { LOG_FORMAT } from "./records.ts";
import { SegmentBuilder } from "./segment-format.ts";

export const DEFAULT_SEGMENT_INTERVAL_MS = 10_000;
export const DEFAULT_SEGMENT_MAX_BYTES = 16 << 20;
/** How long a stop waits for the revisions etcd committed before it (then closes what was received). */
const DRAIN_TIMEOUT_MS = 10_000;

/** A full backup the log can start a chain on. */
export interface BaseBackup {
  key: string;
  revision: number;
  /** When it was taken (its manifest's `created`). */
  created: string;
}

export interface LogOptions {
  source: EtcdSourceOptions;
  store: Store;
  cluster: string;
  /** Folder inside the store, as for backups; "" for the root. */
  dir?: string;
  encryption: EncryptionPlan | null;
  segmentIntervalMs?: number;
  segmentMaxBytes?: number;
  /** Takes a full backup now; a new chain starts on it. */
  fullBackup: (signal: AbortSignal) => Promise<BaseBackup>;
  /** Stops the log: the open segment is closed (written) first. */
  signal: AbortSignal;
  /** One line per notable event (segment closed, gap, reconnect); never holds a secret. */
  onLine?: (line: string) => void;
  /** Called after each closed segment, for tests and metrics. */
  onSegment?: (stats: SegmentStats) => void;
  /** The clock (ms since the epoch), for tests. */
  now?: () => number;
  /** Metrics and status-page facts, when served. */
  metrics?: LogMetrics;
}

export interface SegmentStats {
  base: number;
  first: number;
  last: number;
  revisions: number;
  events: number;
  storedBytes: number;
}

/** Why a watch session ended. */
type SessionEnd =
  | { kind: "stopped" }
  | { kind: "gap"; from: number; reason: string }
  | { kind: "lost"; error: unknown };

class GapFound extends Error {
  readonly from: number;
  constructor(from: number, reason: string) {
    super(reason);
    this.from = from;
  }
}

/** Runs the log until `signal` aborts. Rejects only on failures that retrying cannot fix. */
export async function runLog(options: LogOptions): Promise<void> {
  const say = options.onLine ?? (() => {});
  let chain = await resumeOrStart(options);
  let retryMs = 500;
  while (!options.signal.aborted) {
    let watch: EtcdWatch;
    try {
      watch = await EtcdWatch.open(options.source, chain.position + 1, options.signal);
    } catch (err) {
      if (options.signal.aborted) break;
      say(`log: cannot watch etcd: ${describeError(err)}; retrying in ${retryMs / 1000}s`);
      await sleep(retryMs, options.signal);
      retryMs = Math.min(retryMs * 2, 30_000);
      continue;
    }
    say(`log: watching ${watch.endpoint} from revision ${chain.position + 1} (chain ${chain.base})`);
    const session = new Session(options, chain, watch);
    const end = await session.run();
    // Resume after what is closed: revisions received but not stored (a failed last close) are read again.
    chain.position = session.closed;
    if (end.kind === "stopped") break;
    if (end.kind === "lost") {
      say(`log: ${describeError(end.error)}; reconnecting from revision ${chain.position + 1}`);
      await sleep(retryMs, options.signal);
      retryMs = Math.min(retryMs * 2, 30_000);
      continue;
    }
    retryMs = 500;
    options.metrics?.gap();
    // The gap starts after the last closed revision (received ones that could not be stored are lost too).
    const from = Math.min(end.from, session.closed + 1);
    say(`log: gap after revision ${from - 1}: ${end.reason}; taking a full backup to start a new chain`);
    // Until the new chain exists nothing can be recorded: retry the full backup rather than give up.
    for (;;) {
      try {
        chain = await startChainAfterGap(options, from, end.reason);
        break;
      } catch (err) {
        if (options.signal.aborted) return;
        say(
          `log: the full backup after the gap failed: ${describeError(err)}; retrying in ${retryMs / 1000}s`,
        );
        await sleep(retryMs, options.signal);
        retryMs = Math.min(retryMs * 2, 30_000);
      }
    }
  }
}

interface ChainPosition {
  base: number;
  /** When the chain's full backup was taken. */
  start: string;
  /** The last revision in a closed segment (or the base). */
  position: number;
}

/**
 * Where to go on: the newest chain's last closed revision, or a new chain on the newest full backup, or on a
 * full backup taken now. Segment objects a killed log left without manifest are removed.
 */
async function resumeOrStart(options: LogOptions): Promise<ChainPosition> {
  const say = options.onLine ?? (() => {});
  const [log] = await readLogCatalog(options.store, { cluster: options.cluster });
  const chains = (log?.chains ?? []).filter((c) => (c.dir || "") === (options.dir ?? ""));
  const newest: Chain | undefined = chains.at(-1);
  if (newest?.record) {
    for (const key of newest.unclosed) {
      say(`log: removing unclosed segment ${key} (the log stopped before its manifest was written)`);
      await deleteObject(options.store, key);
    }
    if (newest.holes.length > 0) {
      const hole = newest.holes[0]!;
      say(`log: chain ${newest.base} has a hole at revisions ${hole.from}-${hole.to}`);
      return await startChainAfterGap(
        options,
        hole.from,
        `segments missing for revisions ${hole.from}-${hole.to}`,
      );
    }
    say(`log: resuming chain ${newest.base} after its last closed revision ${newest.reach}`);
    return { base: newest.base, start: newest.record.backupTime, position: newest.reach };
  }
  const backups = await listBackups(options.store);
  const base = backups.find(
    (e) =>
      e.kind === "snapshot" &&
      e.state === "complete" &&
      e.cluster === options.cluster &&
      e.dir === (options.dir ?? "") &&
      e.manifest?.etcd?.revision,
  );
  if (base?.manifest?.etcd) {
    const backup = { key: base.key, revision: base.manifest.etcd.revision, created: base.manifest.created };
    say(`log: starting a chain on the newest full backup ${backup.key} (revision ${backup.revision})`);
    await writeChain(options, backup, "first chain, on the newest full backup");
    return { base: backup.revision, start: backup.created, position: backup.revision };
  }
  say("log: no full backup of this cluster yet; taking one");
  const backup = await options.fullBackup(options.signal);
  await writeChain(options, backup, "first chain, on a full backup taken by the log");
  return { base: backup.revision, start: backup.created, position: backup.revision };
}

async function startChainAfterGap(options: LogOptions, from: number, reason: string): Promise<ChainPosition> {
  const backup = await options.fullBackup(options.signal);
  const now = new Date(options.now?.() ?? Date.now());
  if (backup.revision >= from) {
    const to = backup.revision - 1;
    await writeJson(options.store, gapKey(options.cluster, from, Math.max(from, to), options.dir), {
      format: LOG_FORMAT,
      kind: "log-gap",
      cluster: options.cluster,
      from,
      to: Math.max(from, to),
      detected: now.toISOString(),
      reason,
    });
  }
  await writeChain(options, backup, `after a gap: ${reason}`);
  options.onLine?.(`log: new chain on ${backup.key} (revision ${backup.revision})`);
  return { base: backup.revision, start: backup.created, position: backup.revision };
}

async function writeChain(options: LogOptions, backup: BaseBackup, reason: string): Promise<void> {
  await writeJson(options.store, chainKey(options.cluster, backup.revision, options.dir), {
    format: LOG_FORMAT,
    kind: "log-chain",
    cluster: options.cluster,
    base: backup.revision,
    backup: backup.key,
    backupTime: backup.created,
    started: new Date(options.now?.() ?? Date.now()).toISOString(),
    reason,
  });
}

/** One open watch: appends revisions to the open segment and closes segments on time. */
class Session {
  /** The last revision received. */
  position: number;
  /** The last revision in a closed segment (or the chain's position when the session started). */
  closed: number;
  private readonly options: LogOptions;
  private readonly base: number;
  private readonly start: string;
  private readonly watch: EtcdWatch;
  private segment = new SegmentBuilder();
  /** Leases the log knows to exist, with their granted TTL. */
  private leases = new Map<bigint, number>();
  /** Every state change runs through this chain, one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  /** When etcd last confirmed, by a progress notification, that `position` was its current revision. */
  private confirmedAt = 0;
  private closeFailures = 0;
  /** Once stopping: etcd's revision at the stop, which the log receives before it closes the watch. */
  private drainTo: number | undefined;
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(options: LogOptions, chain: ChainPosition, watch: EtcdWatch) {
    this.options = options;
    this.base = chain.base;
    this.start = chain.start;
    this.position = chain.position;
    this.closed = chain.position;
    this.watch = watch;
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private run1<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.serial.then(fn);
    this.serial = next.catch(() => {});
    return next;
  }

  async run(): Promise<SessionEnd> {
    const interval = this.options.segmentIntervalMs ?? DEFAULT_SEGMENT_INTERVAL_MS;
    let timerError: unknown;
    const timer = setInterval(() => {
      this.watch.requestProgress();
      this.run1(() => this.closeSegment()).catch((err) => {
        timerError = err;
      });
    }, interval);
    const { signal } = this.options;
    const stop = () => void this.drainThenClose();
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    let end: SessionEnd;
    try {
      await this.run1(() => this.recordExistingLeases());
      for await (const msg of this.watch.messages()) {
        await this.run1(() => this.handle(msg));
        if (timerError) throw timerError;
      }
      end = { kind: "stopped" };
    } catch (err) {
      if (err instanceof GapFound) end = { kind: "gap", from: err.from, reason: err.message };
      else if (this.options.signal.aborted) end = { kind: "stopped" };
      else end = { kind: "lost", error: err };
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", stop);
      clearTimeout(this.drainTimer);
      this.watch.close();
    }
    // Whatever was received is valid up to the last whole revision: close it, gap or not.
    try {
      await this.run1(() => this.closeSegment());
    } catch (err) {
      this.options.onLine?.(`log: closing the last segment failed: ${describeError(err)}`);
    }
    return end;
  }

  /**
   * On stop, the watch is not cut at once: revisions etcd committed before the stop may still be on their way.
   * It reads etcd's current revision, keeps receiving until the log holds it (see `handle`), then closes the
   * watch, so that the last segment closed at a stop (a daemon's SIGTERM) holds every revision written before
   * it. At most `DRAIN_TIMEOUT_MS` (10 s, within a pod's default 30 s grace), and not at all if etcd does not
   * answer: then what was received is closed.
   */
  private async drainThenClose(): Promise<void> {
    this.drainTimer = setTimeout(() => this.watch.close(), DRAIN_TIMEOUT_MS);
    try {
      this.drainTo = await this.watch.currentRevision();
    } catch {
      this.watch.close();
      return;
    }
    if (this.position >= this.drainTo) this.watch.close();
  }

  private async recordExistingLeases(): Promise<void> {
    for (const id of await this.watch.leases()) await this.learnLease(id, this.position);
  }

  /** Records a lease's TTL (or its absence) the first time the log sees it. */
  private async learnLease(id: bigint, atRevision: number): Promise<void> {
    if (this.leases.has(id)) return;
    const info = await this.watch.lease(id);
    const ttl = info?.grantedTtl ?? 0;
    this.leases.set(id, ttl);
    this.segment.add({ kind: "lease", id, ttl, atRevision, revoked: false });
    // Gone already: granted and revoked between two looks. Its keys' deletions follow as events.
    if (!info) this.segment.add({ kind: "lease", id, ttl: 0, atRevision: atRevision + 1, revoked: true });
  }

  private async handle(msg: WatchMessage): Promise<void> {
    switch (msg.kind) {
      case "compacted":
        throw new GapFound(
          this.position + 1,
          `etcd compacted its history to revision ${msg.compactRevision}, past the log's position ${this.position}`,
        );
      case "canceled":
        throw new Error(`etcd cancelled the watch: ${msg.reason}`);
      case "progress":
        if (msg.revision === this.position) this.confirmedAt = this.now();
        return;
      case "events":
        await this.append(msg.events);
        if (this.segment.bytes >= (this.options.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX_BYTES)) {
          await this.closeSegment();
        }
        if (this.drainTo !== undefined && this.position >= this.drainTo) this.watch.close();
    }
  }

  private async append(events: { revision: number; raw: Buffer }[]): Promise<void> {
    const received = this.now();
    let i = 0;
    while (i < events.length) {
      const revision = events[i]!.revision;
      let j = i;
      while (j < events.length && events[j]!.revision === revision) j++;
      if (revision <= this.position) {
        i = j; // already recorded (a resumed watch never sends these; kept safe)
        continue;
      }
      if (revision !== this.position + 1) {
        throw new GapFound(
          this.position + 1,
          `the watch skipped from revision ${this.position} to ${revision}`,
        );
      }
      const raws = events.slice(i, j).map((e) => e.raw);
      for (const raw of raws) {
        const lease = leaseOfPut(raw);
        if (lease !== 0n && !this.leases.has(lease)) await this.learnLease(lease, revision - 1);
      }
      this.segment.add({ kind: "revision", revision, unixMs: received, events: raws });
      this.position = revision;
      this.options.metrics?.received(revision);
      i = j;
    }
  }

  /** Writes the open segment (when it holds a revision) and the head. A failure keeps the records for the next try. */
  private async closeSegment(): Promise<void> {
    await this.pollLeases();
    const segment = this.segment;
    if (!segment.empty) {
      try {
        const manifest = await writeSegment(
          {
            store: this.options.store,
            cluster: this.options.cluster,
            dir: this.options.dir ?? "",
            base: this.base,
            encryption: this.options.encryption,
          },
          segment,
        );
        this.segment = new SegmentBuilder();
        this.closed = manifest.lastRevision;
        this.closeFailures = 0;
        this.options.onSegment?.({
          base: this.base,
          first: manifest.firstRevision,
          last: manifest.lastRevision,
          revisions: manifest.revisions,
          events: manifest.events,
          storedBytes: manifest.sizes.stored,
        });
        this.confirmedAt = Math.max(this.confirmedAt, segment.lastUnixMs);
        this.options.metrics?.segmentWritten(manifest.events);
        this.options.metrics?.closed({
          base: this.base,
          revision: manifest.lastRevision,
          coveredUntilMs: this.confirmedAt,
          chainStart: this.start,
        });
      } catch (err) {
        this.options.metrics?.segmentFailed();
        this.closeFailures++;
        this.options.onLine?.(
          `log: writing segment ${segment.firstRevision}-${segment.lastRevision} failed (${this.closeFailures} in a row): ${describeError(err)}; keeping it for the next try`,
        );
        return;
      }
    }
    // The head speaks for closed revisions only: not while a failed segment waits for its next try.
    if (this.confirmedAt > 0 && this.segment.empty) {
      this.options.metrics?.closed({
        base: this.base,
        revision: this.position,
        coveredUntilMs: this.confirmedAt,
        chainStart: this.start,
      });
      await writeJson(this.options.store, headKey(this.options.cluster, this.base, this.options.dir), {
        format: LOG_FORMAT,
        kind: "log-head",
        revision: this.position,
        confirmed: new Date(this.confirmedAt).toISOString(),
      }).catch((err) => this.options.onLine?.(`log: writing the head failed: ${describeError(err)}`));
    }
  }

  /** Notes leases granted without a key yet, and leases gone since the last look. */
  private async pollLeases(): Promise<void> {
    let now: bigint[];
    try {
      now = await this.watch.leases();
    } catch {
      return; // the connection is gone; the next session looks again
    }
    const alive = new Set(now);
    for (const id of now) if (!this.leases.has(id)) await this.learnLease(id, this.position);
    for (const id of [...this.leases.keys()]) {
      if (alive.has(id)) continue;
      this.leases.delete(id);
      this.segment.add({ kind: "lease", id, ttl: 0, atRevision: this.position, revoked: true });
    }
  }
}

/** The lease of a PUT event, 0n for a DELETE or a put without lease. */
function leaseOfPut(raw: Buffer): bigint {
  const event = decodeEvent(raw);
  return event.type === EVENT_PUT ? event.lease : 0n;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
