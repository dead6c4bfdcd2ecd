/**
 * Checks the revision log of a store, chain by chain: the chain record and its full backup exist, closed
 * segments follow each other without a hole, every segment's object is there, decrypts, decompresses and
 * matches its manifest's sha256, and its records hold exactly the revisions, events and times the manifest
 * names, in order. Segments without manifest (a killed log's) are reported, not counted as damage.
 */
import { resolveBackup } from "../catalog/catalog.ts";
import { describeError } from "../errors.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { readLogCatalog } from "./catalog.ts";
import { readSegmentPayload } from "./log-store.ts";
import { parseSegment } from "./segment-format.ts";

export interface LogFinding {
  severity: "error" | "warning";
  cluster: string;
  chain: number;
  /** The object concerned, when one is. */
  key?: string;
  message: string;
}

export interface LogVerification {
  chains: number;
  segments: number;
  revisions: number;
  findings: LogFinding[];
}

export async function verifyLog(
  store: Store,
  options: { cluster?: string; decrypt?: DecryptionFactory; signal?: AbortSignal } = {},
): Promise<LogVerification> {
  const result: LogVerification = { chains: 0, segments: 0, revisions: 0, findings: [] };
  for (const log of await readLogCatalog(store, options.cluster ? { cluster: options.cluster } : {})) {
    for (const chain of log.chains) {
      result.chains++;
      const note = (severity: LogFinding["severity"], message: string, key?: string) =>
        result.findings.push({
          severity,
          cluster: log.cluster,
          chain: chain.base,
          ...(key ? { key } : {}),
          message,
        });
      if (!chain.record) note("error", "chain.json is missing: the chain's full backup is unknown");
      else {
        try {
          await resolveBackup(store, chain.record.backup);
        } catch (err) {
          note("error", `its full backup cannot be used: ${describeError(err)}`, chain.record.backup);
        }
      }
      for (const h of chain.holes)
        note("error", `revisions ${h.from}-${h.to} are missing: nothing after them is reachable`);
      // The head is written only once every received revision is in a closed segment: a head beyond the
      // reach means the chain's last segments are gone (not a hole between segments, so only the head shows it).
      const lastClosed = Math.max(chain.start, ...chain.segments.map((s) => s.manifest.lastRevision));
      if (chain.head && chain.head.revision > lastClosed) {
        note(
          "error",
          `revisions ${lastClosed + 1}-${chain.head.revision} are missing: the head says the log closed revision ${chain.head.revision}, the last segment ends at ${lastClosed}`,
        );
      }
      for (const key of chain.unclosed)
        note("warning", "segment without manifest (not closed; a log stopped while writing it)", key);
      for (const segment of chain.segments) {
        const m = segment.manifest;
        result.segments++;
        try {
          const payload = await readSegmentPayload(store, m, segment.key, {
            decrypt: options.decrypt,
            signal: options.signal,
          });
          let revisions = 0;
          let events = 0;
          let previous = m.firstRevision - 1;
          for (const record of parseSegment(payload)) {
            if (record.kind !== "revision") continue;
            if (record.revision !== previous + 1) {
              throw new Error(`revision ${record.revision} follows ${previous}`);
            }
            previous = record.revision;
            revisions++;
            events += record.events.length;
          }
          if (previous !== m.lastRevision || revisions !== m.revisions || events !== m.events) {
            throw new Error(
              `holds revisions ${m.firstRevision}-${previous} (${revisions}, ${events} events); its manifest says ${m.firstRevision}-${m.lastRevision} (${m.revisions}, ${m.events} events)`,
            );
          }
          result.revisions += revisions;
        } catch (err) {
          note("error", describeError(err), segment.key);
        }
      }
    }
  }
  return result;
}
