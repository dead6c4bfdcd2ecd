import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Hinted } from "../errors.ts";
import type { SnapshotSource, SnapshotStream } from "./source.ts";

/**
 * A snapshot file already on disk (`etcdctl snapshot save` output, or a restored backup): for storing
 * existing snapshots, re-encrypting them, and tests. It goes through the same checks as a live snapshot.
 */
export class FileSource implements SnapshotSource {
  readonly description: string;
  private readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
    this.description = `snapshot file ${this.path}`;
  }

  async open(signal?: AbortSignal): Promise<SnapshotStream> {
    const info = await stat(this.path).catch((err: NodeJS.ErrnoException) => {
      throw new Hinted(
        `cannot read snapshot file ${this.path}: ${err.code ?? err.message}`,
        "check --from-file",
      );
    });
    if (!info.isFile()) throw new Hinted(`${this.path} is not a file`, "check --from-file");
    const stream = createReadStream(this.path, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
    return { stream, origin: { kind: "file", endpoint: this.path }, expectedSize: info.size };
  }
}
