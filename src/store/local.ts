import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Hinted } from "../errors.ts";
import { NotFoundError, type ObjectInfo, type PutOptions, type PutResult, type Store } from "./store.ts";

/** Temporary names start with this; they are never listed and prune may remove old ones. */
export const LOCAL_TEMP_PREFIX = ".etcd-backup-tmp-";

/**
 * A directory of backups. `put` writes to a temporary name in the same directory, fsyncs the file, renames
 * it into place and fsyncs the directory, so a crash or a failure leaves either the whole object or only a
 * temporary file that `list` does not show.
 */
export class LocalStore implements Store {
  readonly location: string;
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = this.root;
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep))
      throw new Error(`key ${key} leaves the store directory`);
    return p;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const final = this.path(key);
    const dir = dirname(final);
    await ensureWritableDir(dir, this.root);
    const temp = join(dir, `${LOCAL_TEMP_PREFIX}${basename(final)}.${randomBytes(6).toString("hex")}`);
    const handle = await open(temp, "wx", 0o600);
    try {
      // flush: the file is fsynced before its descriptor closes, so the rename publishes durable content.
      const out = createWriteStream("", { fd: handle, flush: true, highWaterMark: 4 << 20 });
      await pipeline(body, out, { signal: options.signal });
      const size = out.bytesWritten;
      await rename(temp, final);
      await syncDir(dir);
      return { size };
    } catch (err) {
      body.destroy();
      await handle.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw err;
    }
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    try {
      const handle = await open(p, "r");
      return createReadStream("", { fd: handle, highWaterMark: 1 << 20 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(key, this.location);
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.path(key));
      if (!s.isFile()) return null;
      return { key, size: s.size, lastModified: s.mtime };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async *list(prefix = ""): AsyncIterable<ObjectInfo> {
    yield* this.walk("", prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(join(this.root, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && rel === "") {
        throw new Hinted(
          `directory ${this.root} does not exist`,
          "create it or point --to at an existing one",
        );
      }
      throw err;
    }
    for (const entry of entries) {
      const key = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || prefix === "")
          yield* this.walk(key, prefix);
        continue;
      }
      // Temporary files belong to uploads in flight (or crashed ones); they are not objects.
      if (!entry.isFile() || !key.startsWith(prefix) || entry.name.startsWith(LOCAL_TEMP_PREFIX)) continue;
      const info = await this.stat(key);
      if (info) yield info;
    }
  }

  /** Temporary files left by crashed uploads, in any folder of the store, with their age, for cleanup. */
  async *leftovers(dir = this.root): AsyncIterable<{ path: string; lastModified: Date }> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* this.leftovers(p);
        continue;
      }
      if (!entry.isFile() || !entry.name.startsWith(LOCAL_TEMP_PREFIX)) continue;
      const s = await stat(p).catch(() => null);
      if (s) yield { path: p, lastModified: s.mtime };
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}

async function ensureWritableDir(dir: string, root: string): Promise<void> {
  const s = await stat(root).catch(() => null);
  if (!s) throw new Hinted(`directory ${root} does not exist`, "create it or point --to at an existing one");
  if (!s.isDirectory()) throw new Hinted(`${root} is not a directory`, "point --to at a directory");
  if (dir !== root) await mkdir(dir, { recursive: true });
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
