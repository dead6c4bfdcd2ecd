/**
 * Keeps many replay Txns in flight without ever letting etcd apply them out of order.
 *
 * Sent one after another, each Txn waits for its own raft round and fsync (about 500 revisions a second on
 * disk). Sent concurrently, etcd batches them, but nothing orders concurrent requests. So every Txn after the
 * first of a batch carries a guard that holds exactly when etcd's state is the previous original revision:
 * - the previous revision put key K: `mod_revision(K) == previous` (a mod revision is unique to its revision,
 *   and no later revision can be applied before this one, by the same rule);
 * - the previous revisions back to the last put (or the batch start) only deleted keys: also `K absent` for
 *   each key they deleted (each existed at the anchor, since deletions create nothing).
 * A Txn whose guard fails changes nothing (no revision); every Txn after it then fails too, and the batch is
 * resent from it, its first Txn unguarded (the state is then exactly its previous revision). Each round
 * applies at least one revision. When a guard would be long, or contradict itself (the anchor key deleted
 * since: it could never hold, and each such Txn would cost a resent round), the batch ends there.
 * The header revision of every applied Txn is still checked against the original revision.
 */
import type { DecodedEvent } from "../source/etcd-watch.ts";
import { EVENT_PUT } from "../source/etcd-watch.ts";
import type { GuardCompare, ReplayClient } from "./replay-client.ts";

const MAX_ABSENT_COMPARES = 16;

interface Pending {
  revision: number;
  events: DecodedEvent[];
  guard: GuardCompare[];
}

export class ReplayPipeline {
  /** Rounds that had to be resent because etcd took a Txn before its predecessor. */
  resent = 0;
  private readonly client: ReplayClient;
  private readonly window: number;
  private batch: Pending[] = [];
  private anchor: { key: Buffer; revision: number } | undefined;
  private deleted: Buffer[] = [];
  /** The guard cannot be built for the next revision: it must start a new batch. */
  private broken = false;

  constructor(client: ReplayClient, window: number) {
    this.client = client;
    this.window = Math.max(1, window);
  }

  /** Queues one original revision; sends the batch when it is full or the revision cannot be guarded. */
  async add(revision: number, events: DecodedEvent[]): Promise<void> {
    if (this.batch.length >= this.window || this.broken || this.deleted.length > MAX_ABSENT_COMPARES) {
      await this.flush();
    }
    const guard: GuardCompare[] = [];
    if (this.batch.length > 0) {
      if (this.anchor) guard.push({ key: this.anchor.key, modRevision: this.anchor.revision });
      for (const key of this.deleted) guard.push({ key, absent: true });
    }
    this.batch.push({ revision, events, guard });
    const put = events.find((e) => e.type === EVENT_PUT);
    if (put) {
      this.anchor = { key: put.key, revision };
      this.deleted = [];
    } else {
      for (const e of events) {
        if (this.anchor?.key.equals(e.key)) this.broken = true;
        this.deleted.push(e.key);
      }
    }
  }

  /** Sends what is queued and waits until all of it is applied, in order. */
  async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.anchor = undefined;
    this.deleted = [];
    this.broken = false;
    let start = 0;
    while (start < batch.length) {
      const round = batch.slice(start);
      const results = await Promise.all(
        round.map((p, i) => this.client.applyRevision(p.events, i === 0 ? [] : p.guard)),
      );
      let i = 0;
      for (; i < results.length && results[i]!.applied; i++) {
        const expected = round[i]!.revision;
        if (results[i]!.revision !== expected) {
          throw new Error(
            `replay diverged: original revision ${expected} became revision ${results[i]!.revision} (was a lease expired or etcd written to?)`,
          );
        }
      }
      if (i < results.length && results.slice(i).some((r) => r.applied)) {
        throw new Error(
          `replay diverged: a Txn after revision ${round[i]!.revision - 1} was applied out of order`,
        );
      }
      if (i < results.length) this.resent++;
      start += i;
    }
  }
}
