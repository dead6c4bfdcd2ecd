import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { link, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Hinted } from "../errors.ts";
import { FileSink } from "./file-sink.ts";
import {
  AlreadyExistsError,
  type Leftover,
  NO_RETENTION,
  NotFoundError,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type Retention,
  type Store,
} from "./store.ts";

/** Temporary names start with this; they are never listed and prune may remove old ones. */
const LOCAL_TEMP_PREFIX = ".etcd-backup-tmp-";
/** The random suffix `put` gives a temporary name. */
const TEMP_SUFFIX = /\.[0-9a-f]{12}$/;

/**
 * A directory of backups. `put` writes to a temporary name in the same directory, fsyncs the file, renames
 * it into place and fsyncs the directory, so a crash or a failure leaves either the whole object or only a
 * temporary file that `list` does not show.
 *
 * An `ifAbsent` put publishes with `link` instead of `rename`: the kernel creates the name only if it does not
 * exist, so of two concurrent creates exactly one succeeds (`exclusive: true`). On a file system without hard
 * links it checks the name and renames (`exclusive: false`).
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
      // The file is fsynced before its descriptor closes, so the rename publishes durable content.
      const out = new FileSink(handle);
      await pipeline(body, out, { signal: options.signal });
      await handle.close();
      const size = out.bytesWritten;
      const exclusive = options.ifAbsent ? await this.publishIfAbsent(temp, final, key) : undefined;
      if (!options.ifAbsent) await rename(temp, final);
      await syncDir(dir);
      return { size, ...(exclusive !== undefined ? { exclusive } : {}) };
    } catch (err) {
      body.destroy();
      await handle.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw err;
    }
  }

  /** Gives `temp` the name `final` unless that exists; returns whether the create was exclusive. */
  private async publishIfAbsent(temp: string, final: string, key: string): Promise<boolean> {
    try {
      await link(temp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") throw new AlreadyExistsError(key, this.location);
      // No hard links here (some network and FUSE file systems): check, then rename, not exclusive.
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
      if (await this.stat(key)) throw new AlreadyExistsError(key, this.location);
      await rename(temp, final);
      return false;
    }
    // The object now has two names; the temporary one goes (a crash here leaves it for prune, never a partial).
    await rm(temp, { force: true });
    return true;
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    try {
      const handle = await open(p, "r");
      return createReadStream("", { fd: handle, highWaterMark: 1 << 20 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") throw new NotFoundError(key, this.location);
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.path(key));
      if (!s.isFile()) return null;
      return { key, size: s.size, lastModified: s.mtime };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a path component is a file (the store's root, or a folder named like an object).
      if (code === "ENOENT" || code === "ENOTDIR") return null;
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
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && rel === "") {
        throw new Hinted(
          `directory ${this.root} does not exist`,
          "create it or point --to at an existing one",
        );
      }
      if (code === "ENOTDIR" && rel === "") {
        throw new Hinted(`${this.root} is not a directory`, "point --to at a directory");
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

  /** Temporary files of interrupted puts under `prefix`, each with the key it was for (see `Store`). */
  async *leftovers(prefix = ""): AsyncIterable<Leftover> {
    yield* this.temporaryFiles(this.root, prefix);
  }

  async removeLeftover(leftover: Leftover): Promise<void> {
    if (!basename(leftover.id).startsWith(LOCAL_TEMP_PREFIX))
      throw new Error(`${leftover.id} is not a temporary file of this store`);
    await rm(this.path(leftover.id), { force: true });
  }

  private async *temporaryFiles(dir: string, prefix: string): AsyncIterable<Leftover> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        yield* this.temporaryFiles(p, prefix);
        continue;
      }
      if (!entry.isFile() || !entry.name.startsWith(LOCAL_TEMP_PREFIX)) continue;
      const id = relative(this.root, p).split(sep).join("/");
      // `<dir>/<LOCAL_TEMP_PREFIX><target base name>.<12 hex digits>`, as `put` names it.
      const target = entry.name.slice(LOCAL_TEMP_PREFIX.length).replace(TEMP_SUFFIX, "");
      const key = (dirname(id) === "." ? "" : `${dirname(id)}/`) + target;
      if (!key.startsWith(prefix)) continue;
      const s = await stat(p).catch(() => null);
      if (s) yield { key, kind: "temporary file", since: s.mtime, size: s.size, id };
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  /** A directory has no object lock: every file answers `NO_RETENTION` (file modes are not a lock). */
  async retention(key: string): Promise<Retention> {
    if (!(await this.stat(key))) throw new NotFoundError(key, this.location);
    return NO_RETENTION;
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
