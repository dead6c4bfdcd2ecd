import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Hinted } from "../errors.ts";
import type { TarHeader } from "./tar-header.ts";
import type { TarInput } from "./tar-writer.ts";

/** Where kubeadm keeps what a control plane needs besides etcd's data. */
export const KUBEADM_DIR = "/etc/kubernetes";

/**
 * The kubeadm set under `dir`: `pki/` (CAs, keys, service account keys), `manifests/` (static pods) and the
 * `*.conf` kubeconfigs. Only what exists is returned; throws `Hinted` when none of it does.
 */
export async function kubeadmPaths(dir = KUBEADM_DIR): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Hinted(
      `cannot read ${dir}: ${err.code ?? err.message}`,
      "pass --path for each directory to save",
    );
  });
  const picked = names.filter((n) => n === "pki" || n === "manifests" || n.endsWith(".conf")).sort();
  if (picked.length === 0) {
    throw new Hinted(`${dir} holds no pki/, manifests/ or *.conf`, "pass --path for each directory to save");
  }
  return picked.map((n) => join(dir, n));
}

/** What was collected, for the manifest. */
export interface CollectTally {
  files: number;
  directories: number;
  symlinks: number;
  /** Bytes of file content. */
  bytes: number;
  /** Paths left out (sockets, devices, FIFOs) with the reason. */
  skipped: string[];
}

/** The archive name of an absolute path: the path without its leading slash, as tar stores it. */
export function archiveName(path: string): string {
  return resolve(path).replace(/^\/+/, "");
}

/**
 * The members for the given paths, walked depth first in name order (a directory before its content),
 * symlinks stored as links and never followed. Names are the absolute paths without the leading slash, so
 * `restore-config --target /` puts everything back where it was. `tally` is filled as members are pulled.
 * Throws `Hinted` when a given path does not exist.
 */
export async function* collectMembers(paths: string[], tally: CollectTally): AsyncGenerator<TarInput> {
  for (const path of paths) {
    const abs = resolve(path);
    const info = await lstat(abs).catch((err: NodeJS.ErrnoException) => {
      throw new Hinted(`cannot read ${abs}: ${err.code ?? err.message}`, "check --path");
    });
    if (info.isDirectory() && abs === "/")
      throw new Hinted("refusing to archive /", "pass the directories to save with --path");
    yield* walk(abs, tally);
  }
}

async function* walk(abs: string, tally: CollectTally): AsyncGenerator<TarInput> {
  const info = await lstat(abs);
  const base: Omit<TarHeader, "type" | "size"> = {
    path: archiveName(abs),
    mode: info.mode & 0o7777,
    uid: info.uid,
    gid: info.gid,
    mtime: Math.floor(info.mtimeMs / 1000),
  };
  if (info.isSymbolicLink()) {
    tally.symlinks++;
    yield { header: { ...base, type: "symlink", size: 0, linkpath: await readlink(abs) } };
  } else if (info.isFile()) {
    tally.files++;
    tally.bytes += info.size;
    yield {
      header: { ...base, type: "file", size: info.size },
      open: () => createReadStream(abs, { highWaterMark: 1 << 16 }),
    };
  } else if (info.isDirectory()) {
    tally.directories++;
    yield { header: { ...base, type: "directory", size: 0 } };
    for (const name of (await readdir(abs)).sort()) yield* walk(join(abs, name), tally);
  } else {
    tally.skipped.push(`${abs} (not a file, directory or symlink)`);
  }
}
