import { createWriteStream } from "node:fs";
import { chmod, chown, lchown, lstat, lutimes, mkdir, rename, stat, symlink, utimes } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { pipeline, type Readable, type Transform } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { Hinted } from "../errors.ts";
import { crashAfterBytesRead, crashPoint } from "../restore/crash-point.ts";
import { createWorkFolder } from "../restore/work-folder.ts";
import { decompressStage } from "../stages/compress.ts";
import { ByteCounter } from "../stages/count.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { DigestStage } from "./digest-stage.ts";
import type { TarHeader } from "./tar-header.ts";
import { readTar } from "./tar-reader.ts";

export interface RestoreConfigOptions {
  store: Store;
  entry: CatalogEntry;
  decrypt?: DecryptionFactory;
  /** Directory the archive's paths are restored under (`/` puts them back where they were). Must exist. */
  target: string;
  /** Replace existing files and symlinks (never a directory with a file, or the reverse). */
  force?: boolean;
  /** Set owners from the archive (numeric uid/gid). Default: when running as root. */
  preserveOwners?: boolean;
  signal?: AbortSignal;
}

export interface RestoreConfigResult {
  target: string;
  files: number;
  directories: number;
  symlinks: number;
  /** Existing files and symlinks that were replaced (only with `force`). */
  replaced: number;
}

/**
 * Checks a member's path and returns it normalised: relative, `/`-separated, without `.` components.
 * Throws for an empty, absolute or NUL-holding path and for any `..` component, so nothing lands outside
 * the target.
 */
export function safeMemberPath(path: string): string {
  if (path.includes("\0")) throw new Error(`archive member ${JSON.stringify(path)} holds a NUL byte`);
  if (path.startsWith("/"))
    throw new Error(`archive member ${path} is absolute; refusing to restore outside the target`);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes(".."))
    throw new Error(`archive member ${path} climbs out with ..; refusing to restore outside the target`);
  if (parts.length === 0) throw new Error(`archive member ${JSON.stringify(path)} has no name`);
  return parts.join("/");
}

/**
 * Restores a config archive under `target`: fetch, decrypt, decompress, check the tar's sha256 against the
 * manifest, and unpack into a private staging directory inside the target. Only once the whole archive
 * is in and checked are the members moved into place (each file and symlink by an atomic rename that
 * replaces, never follows, what is there), with their modes, times and, as root, owners.
 * Refused before anything in the target changes: members escaping the target (`..`, absolute paths, a
 * path through a symlink of the archive or through an existing symlink in the target), and, without
 * `force`, members whose path already exists as a file or symlink.
 */
export async function restoreConfigArchive(options: RestoreConfigOptions): Promise<RestoreConfigResult> {
  const { entry } = options;
  if (entry.kind !== "config")
    throw new Hinted(
      `${entry.key} is not a config archive`,
      "pick a .config.tar backup from `etcd-backup list`",
    );
  if (entry.encrypted && !options.decrypt) {
    throw new Hinted(
      `backup ${entry.key} is encrypted`,
      "pass --identity FILE (or --passphrase-file FILE) to decrypt it",
    );
  }
  const target = resolve(options.target);
  if (!(await stat(target).catch(() => null))?.isDirectory()) {
    throw new Hinted(
      `target ${target} is not a directory`,
      "create it first, or pass --target / to restore in place",
    );
  }
  const preserveOwners = options.preserveOwners ?? process.getuid?.() === 0;
  // Private keys are unpacked here first: a private work folder, removed by the next run's sweep if this one
  // is killed.
  const staging = await createWorkFolder("config", target);
  try {
    // A folder of its own for the tree: owner.json beside it is not an archive member.
    const tree = join(staging.path, "tree");
    await mkdir(tree, { mode: 0o700 });
    const members = await unpack(options, tree);
    crashPoint("config-unpacked");
    return await moveIntoPlace(members, tree, target, options.force ?? false, preserveOwners);
  } finally {
    await staging.remove();
  }
}

/** Unpacks the archive into `staging`; returns the members' headers with checked paths, in archive order. */
async function unpack(options: RestoreConfigOptions, staging: string): Promise<TarHeader[]> {
  const source = await options.store.get(options.entry.key, options.signal ? { signal: options.signal } : {});
  const digest = new DigestStage();
  const stages: Transform[] = [
    new ByteCounter(crashAfterBytesRead),
    ...(options.entry.encrypted && options.decrypt ? [options.decrypt()] : []),
    decompressStage(options.entry.compression),
    digest,
  ];
  const plain = pipeline([source, ...stages] as [Readable, ...Transform[]], () => {}) as unknown as Readable;
  const members: TarHeader[] = [];
  const seen = new Set<string>();
  const symlinks = new Set<string>();
  try {
    for await (const member of readTar(plain)) {
      options.signal?.throwIfAborted();
      const path = safeMemberPath(member.header.path);
      const parts = path.split("/");
      for (let i = 1; i < parts.length; i++) {
        const ancestor = parts.slice(0, i).join("/");
        if (symlinks.has(ancestor)) {
          throw new Error(
            `archive member ${path} lies under the archive's symlink ${ancestor}; refusing to write through it`,
          );
        }
      }
      if (seen.has(path)) throw new Error(`archive member ${path} appears twice`);
      seen.add(path);
      const header = { ...member.header, path };
      const staged = join(staging, path);
      await mkdir(dirname(staged), { recursive: true, mode: 0o700 });
      if (header.type === "directory") {
        await mkdir(staged, { recursive: true, mode: 0o700 });
      } else if (header.type === "symlink") {
        symlinks.add(path);
        await symlink(header.linkpath ?? "", staged);
      } else {
        await pipelineAsync(member.body, createWriteStream(staged, { flags: "wx", mode: 0o600 }));
      }
      members.push(header);
    }
    // The tar reader stops at the end-of-archive blocks; read on so the digest covers every byte.
    for await (const _ of plain) {
    }
  } catch (err) {
    plain.destroy();
    throw new Error(`read config archive ${options.entry.key}`, { cause: err });
  }
  const expected = options.entry.manifest?.sha256;
  if (expected && digest.hex !== expected) {
    throw new Error(`config archive ${options.entry.key} does not match its manifest's sha256`);
  }
  return members;
}

async function moveIntoPlace(
  members: TarHeader[],
  staging: string,
  target: string,
  force: boolean,
  preserveOwners: boolean,
): Promise<RestoreConfigResult> {
  // Check everything before changing anything.
  const conflicts: string[] = [];
  const checkedDirs = new Set<string>();
  for (const m of members) {
    const final = join(target, m.path);
    const parts = m.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join("/");
      if (checkedDirs.has(ancestor)) continue;
      checkedDirs.add(ancestor);
      const info = await lstat(join(target, ancestor)).catch(() => null);
      if (info?.isSymbolicLink()) {
        throw new Hinted(
          `${join(target, ancestor)} is a symlink; refusing to restore ${m.path} through it`,
          "restore into an empty --target and copy by hand",
        );
      }
      if (info && !info.isDirectory())
        throw new Hinted(`${join(target, ancestor)} is not a directory`, "move it aside first");
    }
    const existing = await lstat(final).catch(() => null);
    if (!existing) continue;
    if (m.type === "directory") {
      if (!existing.isDirectory())
        throw new Hinted(`${final} exists and is not a directory`, "move it aside first");
    } else if (existing.isDirectory()) {
      throw new Hinted(`${final} is a directory where the archive has a ${m.type}`, "move it aside first");
    } else {
      conflicts.push(final);
    }
  }
  if (conflicts.length > 0 && !force) {
    throw new Hinted(
      `${conflicts.length} file${conflicts.length === 1 ? "" : "s"} already exist${conflicts.length === 1 ? "s" : ""} (${conflicts.slice(0, 3).join(", ")}${conflicts.length > 3 ? ", ..." : ""}); nothing was restored`,
      "pass --force to overwrite them, or restore into an empty --target",
    );
  }

  const result: RestoreConfigResult = {
    target,
    files: 0,
    directories: 0,
    symlinks: 0,
    replaced: conflicts.length,
  };
  const createdDirs: TarHeader[] = [];
  for (const m of members) {
    const final = join(target, m.path);
    const staged = join(staging, m.path);
    await mkdir(dirname(final), { recursive: true, mode: 0o755 });
    if (m.type === "directory") {
      result.directories++;
      if (!(await lstat(final).catch(() => null))) {
        await mkdir(final, { mode: 0o700 });
        createdDirs.push(m);
      }
    } else if (m.type === "symlink") {
      result.symlinks++;
      if (preserveOwners) await lchown(staged, m.uid, m.gid);
      await lutimes(staged, m.mtime, m.mtime).catch(() => {});
      await rename(staged, final);
    } else {
      result.files++;
      if (preserveOwners) await chown(staged, m.uid, m.gid);
      await chmod(staged, m.mode);
      await utimes(staged, m.mtime, m.mtime);
      await rename(staged, final);
    }
  }
  // Directories last, deepest first, so their times are not disturbed by what is moved into them.
  for (const m of createdDirs.reverse()) {
    const final = join(target, m.path);
    if (preserveOwners) await chown(final, m.uid, m.gid);
    await chmod(final, m.mode);
    await utimes(final, m.mtime, m.mtime);
  }
  return result;
}
