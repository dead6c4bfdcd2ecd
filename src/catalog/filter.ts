import type { BackupName } from "./names.ts";

/** What `list --cluster/--since/--until` select. Bounds are inclusive and compared as instants. */
export interface BackupFilter {
  cluster?: string;
  since?: Date;
  until?: Date;
}

/**
 * The entries that match every given criterion, in their original order. Times are compared as instants, so
 * `prod-2026-01-01T02:00:00+02:00` and `prod-2026-01-01T00:00:00Z` are the same moment whatever their text.
 */
export function filterBackups<T extends Pick<BackupName, "cluster" | "time">>(
  entries: readonly T[],
  filter: BackupFilter,
): T[] {
  return entries.filter(
    (e) =>
      (filter.cluster === undefined || e.cluster === filter.cluster) &&
      (filter.since === undefined || e.time.getTime() >= filter.since.getTime()) &&
      (filter.until === undefined || e.time.getTime() <= filter.until.getTime()),
  );
}
