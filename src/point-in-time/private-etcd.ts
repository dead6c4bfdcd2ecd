/**
 * A private etcd for the replay: one member on loopback, on free ports, on a data dir inside a 0700 work
 * folder. All process handling of the point-in-time restore is here, so that it can move onto the project's
 * work-folder and watchdog module in one place.
 *
 * `stop()` always ends the process (SIGTERM, then SIGKILL after 5 s); the caller removes the work folder.
 * The process is also killed if this Node process exits first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Hinted } from "../errors.ts";
import { loopbackPorts } from "../loopback-port.ts";
import { findExecutable } from "../restore/etcd-tools.ts";

export interface PrivateEtcd {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  stop(): Promise<void>;
}

/** etcd from ETCD_BACKUP_ETCD, else `etcd` in PATH, else Debian's /usr/bin/etcd. */
export async function findEtcd(): Promise<string> {
  for (const candidate of [process.env.ETCD_BACKUP_ETCD, "etcd", "/usr/bin/etcd"]) {
    if (!candidate) continue;
    const path = await findExecutable(candidate);
    if (path) return path;
  }
  throw new Hinted(
    "the point-in-time restore needs an etcd binary to replay the log, and none was found",
    "install etcd (Debian: apt install etcd-server) or set ETCD_BACKUP_ETCD to its path",
  );
}

/**
 * Starts etcd on `dataDir` (a restored member named "default") and waits until it serves. Should another
 * process take one of its ports before etcd binds it, etcd fails before it opens the data dir, and it is
 * started again on other ports (three times at most).
 */
export async function startPrivateEtcd(dataDir: string, signal?: AbortSignal): Promise<PrivateEtcd> {
  const binary = await findEtcd();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary, dataDir, signal);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 3) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(binary: string, dataDir: string, signal?: AbortSignal): Promise<PrivateEtcd> {
  const [clientPort, peerPort] = await loopbackPorts(2);
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child: ChildProcess = spawn(
    binary,
    [
      "--name",
      "default",
      "--data-dir",
      dataDir,
      "--listen-client-urls",
      endpoint,
      "--advertise-client-urls",
      endpoint,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `default=${peer}`,
      "--log-level",
      "error",
      "--logger",
      "zap",
      // The replay writes one Txn per original revision; a larger limit lets a revision with many or big
      // values through (etcd's default is 1.5 MiB per request).
      "--max-request-bytes",
      String(64 << 20),
      // A range delete of N keys is one revision of N events, replayed as one Txn of N deletes: far above
      // etcd's default limit of 128 operations per Txn.
      "--max-txn-ops",
      "10000000",
      "--quota-backend-bytes",
      String(8 << 30),
    ],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? "" },
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exit;
    clearTimeout(timer);
  };
  try {
    await waitServing(endpoint, () => exited, signal);
  } catch (err) {
    await stop();
    const reason = lastLine(stderr) || (err as Error).message;
    const Failure = exited && /address already in use/.test(stderr) ? PortTaken : Error;
    throw new Failure(`the replay etcd did not start: ${reason}`, { cause: err });
  }
  return { endpoint, stop };
}

async function waitServing(endpoint: string, exited: () => boolean, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    signal?.throwIfAborted();
    if (exited()) throw new Error("etcd exited");
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && ((await res.json()) as { health?: string }).health === "true") return;
    } catch {}
    if (Date.now() > deadline) throw new Error("etcd was not healthy within 30s");
    await new Promise((r) => setTimeout(r, 100));
  }
}

function lastLine(text: string): string {
  const line = text.trim().split("\n").at(-1) ?? "";
  try {
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    return [entry.msg, entry.error].filter(Boolean).join(": ");
  } catch {
    return line;
  }
}
