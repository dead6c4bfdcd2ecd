/** A seeded writer for the point-in-time e2e tests that need the log split at known revisions. */
import type { EtcdKv } from "../fixtures/etcd-kv.ts";
import type { SeededRandom } from "../fixtures/seeded-random.ts";

/** `count` revisions of puts, overwrites and deletes on a small keyspace of this phase; returns the last revision. */
export async function writePhase(
  kv: EtcdKv,
  rng: SeededRandom,
  phase: number,
  count: number,
): Promise<number> {
  let last = 0;
  for (let i = 0; i < count; i++) {
    const key = `/registry/pods/default/p${phase}-${rng.int(0, 25)}`;
    if (rng.int(0, 9) === 0) last = Number(await kv.delete(key));
    else last = Number(await kv.txn([{ key, value: rng.bytes(rng.int(1, 1500)) }]));
  }
  return last;
}
