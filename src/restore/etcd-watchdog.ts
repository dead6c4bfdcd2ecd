/**
 * The watchdog a test restore starts etcd through, run as its own program:
 * `node etcd-watchdog.js <work folder> <etcd> <etcd args...>`.
 * It starts etcd, records it in the work folder, and exits with etcd's exit code when etcd exits. When its
 * stdin ends, which happens when the test restore is done with etcd and also when the process that started it
 * died, even by SIGKILL (the kernel closes the pipe), it stops etcd (SIGTERM, SIGKILL after 5 s), removes the
 * work folder and exits. So no etcd serving decrypted data outlives the run that started it. It runs in its own
 * session (the parent starts it detached), so a Ctrl-C meant for the parent reaches it only through the parent.
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { recordServer } from "./work-folder.ts";

const [folder, etcdPath, ...etcdArgs] = process.argv.slice(2);
if (!folder || !etcdPath) {
  process.stderr.write("usage: etcd-watchdog <work folder> <etcd> [args...]\n");
  process.exit(2);
}

// Once the parent is gone its end of the stderr pipe is too: a failed write must not stop the cleanup.
process.stderr.on("error", () => {});
const etcd = spawn(etcdPath, etcdArgs, { stdio: ["ignore", "ignore", "inherit"] });
let stopping = false;

etcd.on("error", (err) => {
  process.stderr.write(`cannot start ${etcdPath}: ${err.message}\n`);
  process.exit(127);
});
if (etcd.pid) await recordServer(folder, etcd.pid).catch(() => {});

etcd.on("exit", (code, signal) => {
  if (stopping) return;
  process.exit(code ?? (signal ? 128 : 1));
});

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (etcd.exitCode === null && etcd.signalCode === null) {
    const exited = new Promise<void>((resolve) => etcd.once("exit", () => resolve()));
    etcd.kill("SIGTERM");
    const timer = setTimeout(() => etcd.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
  await rm(folder!, { recursive: true, force: true }).catch(() => {});
  process.exit(0);
}

process.stdin.on("end", () => void stop());
process.stdin.on("close", () => void stop());
process.stdin.on("error", () => void stop());
process.stdin.resume();
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.on("SIGHUP", () => void stop());
