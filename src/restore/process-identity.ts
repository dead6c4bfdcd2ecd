import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * Who a process is, in a way that survives pid reuse: its pid, its start time (clock ticks since boot, field
 * 22 of /proc/<pid>/stat), the boot it ran in and the pid namespace its pid belongs to. Off Linux (no /proc)
 * only the pid is known.
 */
export interface ProcessIdentity {
  pid: number;
  /** /proc/<pid>/stat starttime, as a decimal string (it is a 64-bit tick count). */
  start?: string;
  /** /proc/sys/kernel/random/boot_id when the process ran. */
  boot?: string;
  /** The pid namespace, as /proc/self/ns/pid reads (`pid:[4026531836]`). */
  pidNamespace?: string;
}

/** What can be said about a recorded process from here. */
export type ProcessState = "alive" | "dead" | "unknown";

/**
 * The start time of `pid` in clock ticks since boot, or undefined when there is no such process (or no /proc),
 * or only its zombie.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) is in parentheses and may hold spaces or ')': count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields from 3 (state) on; a zombie has exited and only waits for its parent to reap it.
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    // starttime is field 22.
    return fields[22 - 3];
  } catch {
    return undefined;
  }
}

function readOptional(read: () => string): string | undefined {
  try {
    return read().trim();
  } catch {
    return undefined;
  }
}

let self: ProcessIdentity | undefined;

/** This process's identity (computed once). */
export function currentProcess(): ProcessIdentity {
  if (!self) self = identityOf(process.pid);
  return self;
}

/** The identity of a running process, as seen from this process's boot and pid namespace. */
export function identityOf(pid: number): ProcessIdentity {
  const start = processStart(pid);
  const boot = readOptional(() => readFileSync("/proc/sys/kernel/random/boot_id", "latin1"));
  const pidNamespace = readOptional(() => readlinkSync("/proc/self/ns/pid"));
  return {
    pid,
    ...(start !== undefined ? { start } : {}),
    ...(boot !== undefined ? { boot } : {}),
    ...(pidNamespace !== undefined ? { pidNamespace } : {}),
  };
}

/**
 * Whether the recorded process still runs. Dead: it ran in another boot, or no process has its pid, or the
 * process with its pid started at another time (the pid was reused). Unknown: it ran in another pid
 * namespace (a container sharing the directory), where its pid means nothing here. Without /proc, a pid that
 * answers signal 0 counts as alive.
 */
export function processState(owner: ProcessIdentity): ProcessState {
  const here = currentProcess();
  if (owner.boot && here.boot && owner.boot !== here.boot) return "dead";
  if (owner.pidNamespace && here.pidNamespace && owner.pidNamespace !== here.pidNamespace) return "unknown";
  if (!Number.isSafeInteger(owner.pid) || owner.pid <= 0) return "dead";
  if (here.start !== undefined) {
    // /proc is there: a missing entry is a dead process, a different start time a reused pid.
    const start = processStart(owner.pid);
    if (start === undefined) return "dead";
    if (owner.start !== undefined && start !== owner.start) return "dead";
    return "alive";
  }
  try {
    process.kill(owner.pid, 0);
    return "alive";
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? "alive" : "dead";
  }
}

/** The command line of a running process (arguments joined by spaces), or undefined. */
export function processCommandLine(pid: number): string | undefined {
  return readOptional(() => readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " "));
}

/**
 * The processes (other than this one) whose command line names `path` or something inside it, from /proc; empty
 * off Linux. For a sweep: a tool a killed run started on its work folder (`etcdutl snapshot restore --data-dir
 * <folder>/data`) outlives it and would go on writing decrypted data there.
 */
export function processesNaming(path: string): number[] {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const args = readOptional(() => readFileSync(`/proc/${pid}/cmdline`, "latin1"))?.split("\0");
    if (args?.some((a) => a === path || a.startsWith(`${path}/`) || a.includes(`=${path}`))) found.push(pid);
  }
  return found;
}
