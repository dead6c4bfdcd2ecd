import { type ClusterLog, readLogCatalog, recoverableRanges } from "../point-in-time/catalog.ts";
import type { Store } from "../store/store.ts";
import { renderTable } from "./table.ts";

/** The windows one can restore to with `restore --at`, per cluster, and the gaps between them, as JSON. */
export function logWindowsJson(logs: ClusterLog[]) {
  return logs.map((log) => ({
    cluster: log.cluster,
    recoverable: recoverableRanges(log).map((r) => ({
      fromRevision: r.from,
      toRevision: r.to,
      from: r.fromTime.toISOString(),
      to: r.toTime.toISOString(),
      base: log.chains.find((c) => c.base === r.base)?.record?.backup ?? null,
      segments: log.chains.find((c) => c.base === r.base)?.segments.length ?? 0,
    })),
    gaps: log.gaps.map((g) => ({
      fromRevision: g.from,
      toRevision: g.to,
      detected: g.detected,
      reason: g.reason,
    })),
    holes: log.chains.flatMap((c) =>
      c.holes.map((h) => ({ chain: c.base, fromRevision: h.from, toRevision: h.to })),
    ),
  }));
}

/** The recoverable windows as a table after `list`'s backups; "" when the store holds no revision log. */
export async function renderLogWindows(store: Store, cluster: string | undefined): Promise<string> {
  const logs = await readLogCatalog(store, cluster ? { cluster } : {});
  if (logs.length === 0) return "";
  const rows: string[][] = [];
  for (const entry of logWindowsJson(logs)) {
    for (const r of entry.recoverable) {
      rows.push([
        entry.cluster,
        "recoverable",
        `${r.from} .. ${r.to}`,
        `${r.fromRevision}-${r.toRevision}`,
        r.base ?? "-",
      ]);
    }
    for (const g of entry.gaps)
      rows.push([
        entry.cluster,
        "GAP",
        `detected ${g.detected}`,
        `${g.fromRevision}-${g.toRevision}`,
        g.reason,
      ]);
    for (const h of entry.holes) {
      rows.push([
        entry.cluster,
        "HOLE",
        `in chain ${h.chain}`,
        `${h.fromRevision}-${h.toRevision}`,
        "log segments missing",
      ]);
    }
  }
  return `\npoint-in-time recovery (restore --at TIME | --revision N):\n${renderTable(["CLUSTER", "STATE", "TIME (UTC)", "REVISIONS", "BASE / REASON"], rows)}`;
}
