import { checkDatabase, type Finding } from "../bbolt/check.ts";
import { BufferSource, FileSource } from "../bbolt/page-source.ts";
import { fileTrailerMatches, hasTrailer, TRAILER_SIZE, trailerMatches } from "./trailer.ts";

/*
 * An etcd snapshot file is a bbolt database followed by etcd's sha256 trailer (trailer.ts). Its check is the
 * trailer's findings, then the database's (bbolt/check.ts).
 */

/**
 * Checks a whole snapshot file: its sha256 trailer, then the bbolt database before it (see checkDatabase).
 * Returns the problems found, an empty list for a sound file. Never throws on corrupt input.
 */
export function checkSnapshot(file: Buffer): Finding[] {
  const findings: Finding[] = [];
  const dataSize = trailerFindings(file.length, () => trailerMatches(file), findings);
  return checkDatabase(new BufferSource(file), dataSize, findings);
}

/**
 * `checkSnapshot` on a file read page by page: memory stays a few MiB whatever its size (the trailer's
 * sha256 is computed streaming the file). Same findings as `checkSnapshot` on the file's bytes.
 */
export async function checkSnapshotFile(path: string): Promise<Finding[]> {
  const source = new FileSource(path);
  try {
    const findings: Finding[] = [];
    const matches = hasTrailer(source.size) ? await fileTrailerMatches(path, source.size) : false;
    const dataSize = trailerFindings(source.size, () => matches, findings);
    return checkDatabase(source, dataSize, findings);
  } finally {
    source.close();
  }
}

/** Adds the trailer's findings for a file of `size` bytes; returns the size of the database in it. */
function trailerFindings(size: number, matches: () => boolean, findings: Finding[]): number {
  if (hasTrailer(size)) {
    if (!matches()) {
      findings.push({
        severity: "error",
        message: "sha256 trailer mismatch: the file changed after etcd wrote it",
      });
    }
    return size - TRAILER_SIZE;
  }
  if (size % 512 === 0) {
    findings.push({
      severity: "warning",
      message: "no sha256 trailer: integrity of the whole file cannot be proven",
    });
  } else {
    findings.push({
      severity: "error",
      message: `no sha256 trailer and file size ${size} is not a whole number of pages (truncated?)`,
    });
  }
  return size;
}
