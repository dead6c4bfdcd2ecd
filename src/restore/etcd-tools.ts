import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import { Hinted } from "../errors.ts";

/**
 * The etcd programs a restore drives: `etcdutl` (etcd >= 3.5) or, where it is missing (Debian ships etcd 3.4),
 * `etcdctl` with `ETCDCTL_API=3`, which had `snapshot restore` until 3.5 moved it to etcdutl.
 */
export interface RestoreTool {
  kind: "etcdutl" | "etcdctl";
  path: string;
  /** `snapshot restore` accepts `--bump-revision N` and `--mark-compacted` (etcd 3.6; backported to 3.5 and 3.4 in 2023). */
  supportsRevisionBump: boolean;
}

/** Where programs are looked up: the directories of PATH. */
function searchDirs(pathEnv: string | undefined): string[] {
  return (pathEnv ?? "").split(delimiter).filter((d) => d && isAbsolute(d));
}

/**
 * Finds an executable by name in PATH (or returns `name` itself when it is a path that is executable).
 * Returns null when there is none.
 */
export async function findExecutable(name: string, pathEnv = process.env.PATH): Promise<string | null> {
  const candidates = name.includes("/") ? [name] : searchDirs(pathEnv).map((d) => join(d, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** The environment a tool runs with: etcdctl 3.4 needs ETCDCTL_API=3 for its v3 commands. */
export function toolEnv(kind: RestoreTool["kind"], env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return kind === "etcdctl" ? { ...env, ETCDCTL_API: "3" } : { ...env };
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end and collects its output (the last 64 KiB of each stream). Never rejects on exit codes. */
export async function runTool(
  path: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; privateFiles?: boolean } = {},
): Promise<ToolRun> {
  return await new Promise((resolve, reject) => {
    const start = () =>
      spawn(path, args, {
        env: options.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"],
        ...(options.signal ? { signal: options.signal } : {}),
      });
    const child = options.privateFiles ? withPrivateUmask(start) : start();
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-65536);
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-65536);
    });
    child.on("error", (err) => reject(new Error(`cannot run ${path}`, { cause: err })));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs `start` (which spawns a program) with the umask 077, so that the program creates every file 0600 and
 * every directory 0700 whatever modes it asks for (etcdutl writes its .snap files 0644): decrypted data never
 * becomes readable by others, not even for a moment inside a private folder. The child inherits the umask
 * when it is forked, which `spawn` does before returning; this process's umask is restored at once.
 */
export function withPrivateUmask<T>(start: () => T): T {
  const previous = process.umask(0o077);
  try {
    return start();
  } finally {
    process.umask(previous);
  }
}

/**
 * Finds the program that restores a snapshot into a data dir: `preferred` when given (a path or a name,
 * its kind told by its name), else `etcdutl`, else `etcdctl`, from PATH. Probes `snapshot restore --help` for
 * the revision bump flags. Throws `Hinted` when neither is installed.
 */
export async function findRestoreTool(
  options: { preferred?: string; pathEnv?: string; signal?: AbortSignal } = {},
): Promise<RestoreTool> {
  const names = options.preferred ? [options.preferred] : ["etcdutl", "etcdctl"];
  for (const name of names) {
    const path = await findExecutable(name, options.pathEnv);
    if (!path) continue;
    const kind = /etcdctl[^/]*$/.test(path) ? "etcdctl" : "etcdutl";
    return { kind, path, supportsRevisionBump: await probeRevisionBump(kind, path, options.signal) };
  }
  throw new Hinted(
    options.preferred
      ? `${options.preferred} not found or not executable`
      : "neither etcdutl nor etcdctl is installed",
    "install etcdutl from an etcd release (github.com/etcd-io/etcd/releases) or the etcd-client package",
  );
}

/** True when the tool's `snapshot restore --help` lists both `--bump-revision` and `--mark-compacted`. */
export async function probeRevisionBump(
  kind: RestoreTool["kind"],
  path: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const run = await runTool(path, ["snapshot", "restore", "--help"], {
    env: toolEnv(kind),
    ...(signal ? { signal } : {}),
  });
  const help = run.stdout + run.stderr;
  return help.includes("--bump-revision") && help.includes("--mark-compacted");
}

/**
 * One line out of an etcd tool's stderr: its `Error: ...` line when it printed one, else the message and
 * error of its last zap JSON log line at level error or above, else its last non-empty line.
 */
export function toolErrorLine(stderr: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  const errorLine = lines.findLast((l) => l.startsWith("Error:"));
  if (errorLine) return errorLine.slice("Error:".length).trim();
  for (const line of [...lines].reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      if (entry.level && ["error", "fatal", "panic", "dpanic"].includes(entry.level)) {
        return [entry.msg, entry.error].filter(Boolean).join(": ");
      }
    } catch {}
  }
  return lines.at(-1) ?? "no output";
}
