import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { extname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { errorChain } from "../errors.ts";
import { loopbackPorts } from "../loopback-port.ts";
import { type SnapshotStatus, snapshotFileStatus } from "../mvcc/status.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import { crashPoint } from "./crash-point.ts";
import { restoreSnapshotFile } from "./data-dir.ts";
import { findExecutable, type RestoreTool, withPrivateUmask } from "./etcd-tools.ts";
import { makeThrowawayPki } from "./throwaway-pki.ts";
import { restoreToFile } from "./to-file.ts";
import { createWorkFolder, stopRecordedServer, sweepWorkFolders } from "./work-folder.ts";

/** The watchdog program beside this module (.ts when run from the sources, .js when built). */
const WATCHDOG = fileURLToPath(
  new URL(`./etcd-watchdog${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

export interface TestRestoreOptions {
  store: Store;
  entry: CatalogEntry;
  decrypt?: DecryptionFactory;
  signal?: AbortSignal;
  /** The etcd server binary; `etcd` from PATH when absent. */
  etcdPath?: string;
  /** The restore tool; found with `findRestoreTool` when absent. */
  tool?: RestoreTool;
  /** How long etcd may take to become healthy. Default 60 s. */
  startTimeoutMs?: number;
  /** Called once the restored etcd answers, with its client URL (TLS, client certificate required). */
  onServing?: (clientUrl: string) => Promise<void> | void;
}

export interface TestRestoreReport {
  /** The revision the restored etcd serves, 0 when it never answered. */
  revision: number;
  /** Keys the restored etcd serves (live keys, as `etcdctl get "" --from-key --count-only` counts them). */
  keys: number;
  /** From starting etcd on the restored data dir to its first healthy answer; 0 when it never was. */
  startedInMs: number;
  /** The revision the backup says it holds, and where that figure came from. */
  expectedRevision: number;
  expectedFrom: "manifest" | "snapshot status";
  /** True when etcd started, answered, and every comparable figure matched. */
  matches: boolean;
  /** Why it does not match or could not be tested, one short line each. */
  problems: string[];
}

/**
 * Proves a backup restores: decrypts and checks it into a private temporary directory, restores it into a
 * data dir there (no revision bump, so revisions compare), starts the real `etcd` on free loopback ports,
 * waits until it is healthy, reads its revision and key count, stops it and removes everything, on success
 * and on failure alike. Compares the served revision with the manifest's `etcd.revision`, or when the
 * manifest has none, with the restored snapshot's status (`etcdutl snapshot status`'s revision: the main
 * revision of the last key in bucket `key`, which is what a freshly restored member serves); and the
 * snapshot's status hash and total keys with the manifest's when both exist.
 * Resolves to a report; a failed restore or start is a problem in the report, not a rejection. Rejects
 * only when aborted.
 */
export async function testRestore(options: TestRestoreOptions): Promise<TestRestoreReport> {
  try {
    return await runTestRestore(options);
  } catch (err) {
    if (options.signal?.aborted) {
      // An interrupted test proves nothing either way: say so rather than report figures it never read.
      throw new Error("test restore interrupted, nothing was tested", { cause: options.signal.reason });
    }
    throw err;
  }
}

async function runTestRestore(options: TestRestoreOptions): Promise<TestRestoreReport> {
  const report: TestRestoreReport = {
    revision: 0,
    keys: 0,
    startedInMs: 0,
    expectedRevision: options.entry.manifest?.etcd?.revision ?? 0,
    expectedFrom: "manifest",
    matches: false,
    problems: [],
  };
  // What an earlier run killed before it could clean up is removed first (its etcd stopped).
  await sweepWorkFolders();
  const work = await createWorkFolder("test-restore");
  let etcd: ChildProcess | undefined;
  try {
    const snapshotFile = join(work.path, "snapshot.db");
    let hasTrailer = true;
    try {
      ({ hasTrailer } = await restoreToFile({
        store: options.store,
        entry: options.entry,
        out: snapshotFile,
        ...(options.decrypt ? { decrypt: options.decrypt } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }));
    } catch (err) {
      options.signal?.throwIfAborted();
      report.problems.push(`backup does not read back: ${errorChain(err).join(": ")}`);
      return report;
    }
    crashPoint("test-restore-snapshot-written");
    let status: SnapshotStatus | Error;
    try {
      // Synchronous or not depending on the snapshot reader's version; either way its errors land here.
      status = await snapshotFileStatus(snapshotFile);
    } catch (err) {
      status = err instanceof Error ? err : new Error(String(err));
    }
    compareStatus(report, options.entry, status);
    if (report.problems.length > 0) return report;

    const [clientPort, peerPort] = await loopbackPorts(2);
    const name = "test-restore";
    // TLS with client certificates on both ports: only this process holds a key the etcd accepts.
    const client = `https://127.0.0.1:${clientPort}`;
    const peer = `https://127.0.0.1:${peerPort}`;
    const pki = makeThrowawayPki();
    const tlsDir = join(work.path, "tls");
    await mkdir(tlsDir, { mode: 0o700 });
    const pem = async (file: string, content: string) => {
      await writeFile(join(tlsDir, file), content, { mode: 0o600, flag: "wx" });
      return join(tlsDir, file);
    };
    const [caFile, certFile, keyFile] = [
      await pem("ca.crt", pki.caCert),
      await pem("etcd.crt", pki.serverCert),
      await pem("etcd.key", pki.serverKey),
    ];
    const tls: ClientTls = { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey };
    const dataDir = join(work.path, "data");
    try {
      await restoreSnapshotFile({
        snapshotFile,
        dataDir,
        // The database alone (no trailer) has nothing for etcd's hash check to check.
        member: {
          name,
          initialCluster: `${name}=${peer}`,
          initialAdvertisePeerUrls: peer,
          skipHashCheck: !hasTrailer,
        },
        revisionBump: 0,
        ...(options.tool ? { tool: options.tool } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      options.signal?.throwIfAborted();
      report.problems.push(`restore into a data dir failed: ${errorChain(err).join(": ")}`);
      return report;
    }
    crashPoint("test-restore-data-dir-restored");

    const etcdPath = await findExecutable(options.etcdPath ?? "etcd");
    if (!etcdPath) {
      report.problems.push(`${options.etcdPath ?? "etcd"} not found: cannot start the restored member`);
      return report;
    }
    const args = [
      ...["--name", name, "--data-dir", dataDir],
      ...["--listen-client-urls", client, "--advertise-client-urls", client],
      ...["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer],
      ...["--initial-cluster", `${name}=${peer}`, "--log-level", "error", "--logger", "zap"],
      ...["--cert-file", certFile, "--key-file", keyFile, "--trusted-ca-file", caFile, "--client-cert-auth"],
      ...["--peer-cert-file", certFile, "--peer-key-file", keyFile, "--peer-trusted-ca-file", caFile],
      "--peer-client-cert-auth",
    ];
    const t0 = performance.now();
    // Through the watchdog: it stops etcd and removes the folder when this process ends, however it ends.
    // With the umask 077, which etcd inherits through the watchdog: what it writes stays private.
    const started = withPrivateUmask(() =>
      spawn(process.execPath, [WATCHDOG, work.path, etcdPath, ...args], {
        stdio: ["pipe", "ignore", "pipe"],
        detached: true,
      }),
    );
    etcd = started;
    started.stdin?.on("error", () => {});
    let stderr = "";
    started.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    const exited = new Promise<number | null>((resolve) => started.once("exit", (code) => resolve(code)));
    const healthy = await waitHealthy(client, tls, exited, options.startTimeoutMs ?? 60_000, options.signal);
    if (healthy !== true) {
      options.signal?.throwIfAborted();
      report.problems.push(`restored etcd ${healthy}${stderr ? `: ${lastLogLine(stderr)}` : ""}`);
      return report;
    }
    report.startedInMs = Math.round(performance.now() - t0);
    crashPoint("test-restore-etcd-started");
    await options.onServing?.(client);
    const range = await countKeys(client, tls, options.signal).catch((err: Error) => err);
    if (range instanceof Error) {
      options.signal?.throwIfAborted();
      report.problems.push(`restored etcd does not serve its keys: ${errorChain(range).join(": ")}`);
      return report;
    }
    report.revision = range.revision;
    report.keys = range.count;
    if (report.revision !== report.expectedRevision) {
      report.problems.push(
        `restored etcd serves revision ${report.revision}, the backup's ${report.expectedFrom} says ${report.expectedRevision}`,
      );
    }
    report.matches = report.problems.length === 0;
    return report;
  } finally {
    if (etcd) await stopWatchdog(etcd, work.path);
    await work.remove();
  }
}

function compareStatus(report: TestRestoreReport, entry: CatalogEntry, status: SnapshotStatus | Error): void {
  if (status instanceof Error) {
    report.problems.push(
      `restored snapshot is not a readable etcd database: ${errorChain(status).join(": ")}`,
    );
    return;
  }
  const m = entry.manifest?.etcd;
  if (!m) {
    report.expectedRevision = status.revision;
    report.expectedFrom = "snapshot status";
    return;
  }
  if (m.revision !== status.revision) {
    report.problems.push(
      `snapshot status revision ${status.revision} differs from the manifest's ${m.revision}`,
    );
  }
  if (m.hash !== undefined && m.hash !== status.hash) {
    report.problems.push(`snapshot status hash ${status.hash} differs from the manifest's ${m.hash}`);
  }
  if (m.totalKey !== undefined && m.totalKey !== status.totalKey) {
    report.problems.push(
      `snapshot status total keys ${status.totalKey} differ from the manifest's ${m.totalKey}`,
    );
  }
}

/** Resolves true once GET /health says so, or a reason: the process exited, or the time ran out. */
async function waitHealthy(
  client: string,
  tls: ClientTls,
  exited: Promise<number | null>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<true | string> {
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (exitCode !== undefined) return `exited at start (code ${exitCode})`;
    try {
      const res = await requestJson(`${client}/health`, tls, { signal: AbortSignal.timeout(2000) });
      const body = res.body as { health?: unknown };
      if (res.status === 200 && (body.health === "true" || body.health === true)) return true;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  return `did not become healthy within ${Math.round(timeoutMs / 1000)} s`;
}

/** The served revision and the number of keys, through etcd's JSON gateway (Range over every key, count only). */
async function countKeys(
  client: string,
  tls: ClientTls,
  signal?: AbortSignal,
): Promise<{ revision: number; count: number }> {
  const res = await requestJson(`${client}/v3/kv/range`, tls, {
    // key "\0" with range_end "\0" means every key; count_only leaves the values out.
    body: JSON.stringify({ key: "AA==", range_end: "AA==", count_only: true }),
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
  });
  if (res.status !== 200) throw new Error(`range request answered HTTP ${res.status}`);
  const body = res.body as { header?: { revision?: string }; count?: string };
  const revision = Number(body.header?.revision ?? Number.NaN);
  if (!Number.isSafeInteger(revision)) throw new Error("range answer has no revision");
  return { revision, count: Number(body.count ?? 0) };
}

/** What this process presents to the test etcd, and trusts from it (PEM). */
interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

/** One HTTPS request with a client certificate (fetch cannot present one); POSTs when there is a body. */
async function requestJson(
  url: string,
  tls: ClientTls,
  options: { body?: string; signal: AbortSignal },
): Promise<{ status: number; body: unknown }> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.body ? "POST" : "GET",
        ...tls,
        headers: options.body ? { "content-type": "application/json" } : {},
        signal: options.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(new Error(`answer is not JSON (HTTP ${res.statusCode})`));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/**
 * Stops etcd through its watchdog: closing the watchdog's stdin makes it stop etcd (SIGTERM, then SIGKILL)
 * and exit. Should the watchdog not exit in time it is killed, and etcd with it by the record in the folder.
 */
async function stopWatchdog(watchdog: ChildProcess, folder: string): Promise<void> {
  if (watchdog.exitCode === null && watchdog.signalCode === null) {
    await new Promise<void>((resolve) => {
      watchdog.once("exit", () => resolve());
      watchdog.stdin?.end();
      setTimeout(() => watchdog.kill("SIGKILL"), 10_000).unref();
    });
  }
  await stopRecordedServer(folder);
}

function lastLogLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  const last = lines.at(-1) ?? "";
  try {
    const entry = JSON.parse(last) as { msg?: string; error?: string };
    return [entry.msg, entry.error].filter(Boolean).join(": ");
  } catch {
    return last;
  }
}

/** A short text summary of a test restore: one verdict line, then the figures and any problems. */
export function renderTestRestore(report: TestRestoreReport): string {
  const lines = [
    report.matches
      ? `test restore passed: etcd started in ${(report.startedInMs / 1000).toFixed(1)}s and serves revision ${report.revision} with ${report.keys} keys`
      : "test restore FAILED",
  ];
  if (!report.matches) {
    // A served etcd is at revision 1 or more: 0 means its keys were never read, so no figures are shown.
    if (report.startedInMs > 0 && report.revision > 0) {
      lines.push(
        `  etcd started in ${(report.startedInMs / 1000).toFixed(1)}s, serves revision ${report.revision} with ${report.keys} keys`,
      );
    } else if (report.startedInMs > 0) {
      lines.push(`  etcd started in ${(report.startedInMs / 1000).toFixed(1)}s`);
    }
    for (const problem of report.problems) lines.push(`  - ${problem}`);
  } else {
    lines.push(`  revision matches the backup's ${report.expectedFrom} (${report.expectedRevision})`);
  }
  return `${lines.join("\n")}\n`;
}
