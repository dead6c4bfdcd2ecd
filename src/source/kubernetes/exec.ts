import { Readable } from "node:stream";
import type { KubeApi } from "./kube-api.ts";
import { acceptFor, encodeFrame, FrameReader, newWebSocketKey, OPCODE } from "./websocket.ts";

/**
 * The exec stream protocol offered: `v4.channel.k8s.io` alone. Each binary WebSocket message is one channel byte
 * (0 stdin, 1 stdout, 2 stderr, 3 the exit Status as JSON) followed by raw bytes, so stdout is binary-safe.
 *
 * Why v4 and not v5: kube-apiserver 1.30+ (TranslateStreamCloseWebsocketRequests, on by default) translates a
 * WebSocket request that offers `v5.channel.k8s.io` into SPDY towards the kubelet, while a request offering only
 * older protocols is proxied to the kubelet as the WebSocket upgrade it is (pkg/registry/core/pod/rest/
 * subresources.go, ExecREST.Connect). Kubelets serve WebSocket exec with v4 too; v5 adds only a way to close
 * stdin, which a command that reads no input does not need.
 */
export const EXEC_PROTOCOL = "v4.channel.k8s.io";

const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;

export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
}

/** What the command said on stderr, kept to its last few KiB for an error message. */
const STDERR_KEPT = 8 * 1024;

/**
 * Runs a command in a container through the API server (pods/exec over WebSocket) and returns its stdout as a
 * stream, with backpressure (the socket is paused while the reader is behind). The stream ends when the command
 * exits with 0, and fails with the command's last stderr line when it exits otherwise or the connection breaks.
 * Destroying the stream closes the connection (the API server then ends the exec).
 */
export async function execStdout(api: KubeApi, target: ExecTarget, signal?: AbortSignal): Promise<Readable> {
  const query = new URLSearchParams({ container: target.container, stdout: "true", stderr: "true" });
  for (const arg of target.command) query.append("command", arg);
  const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec?${query}`;
  const key = newWebSocketKey();
  const { socket, head, response } = await api.upgrade(path, [EXEC_PROTOCOL], key, signal);
  if (response.headers["sec-websocket-accept"] !== acceptFor(key)) {
    socket.destroy();
    throw new Error(`exec in pod ${target.pod}: the API server's WebSocket handshake is invalid`);
  }
  const chosen = response.headers["sec-websocket-protocol"];
  if (chosen !== EXEC_PROTOCOL) {
    socket.destroy();
    throw new Error(
      `exec in pod ${target.pod}: the server chose protocol ${String(chosen)}, not ${EXEC_PROTOCOL}`,
    );
  }

  const reader = new FrameReader();
  let stderr = "";
  let status = "";
  let closed = false;
  const stream = new Readable({
    highWaterMark: 1 << 20,
    read() {
      socket.resume();
    },
    destroy(err, callback) {
      if (!closed) {
        closed = true;
        // A polite close, then the connection goes: the API server ends the exec towards the kubelet.
        socket.end(encodeFrame(OPCODE.close, Buffer.from([0x03, 0xe8]), true));
        socket.destroy();
      }
      signal?.removeEventListener("abort", onAbort);
      callback(err);
    },
  });
  const onAbort = () =>
    stream.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });

  const finish = () => {
    if (closed) return;
    closed = true;
    socket.destroy();
    const failure = exitFailure(status);
    if (failure === null) {
      stream.push(null);
      return;
    }
    const said = lastLine(stderr);
    stream.destroy(new Error(`the command in pod ${target.pod} ${failure}${said ? `: ${said}` : ""}`));
  };
  const onBytes = (chunk: Buffer) => {
    let messages: ReturnType<FrameReader["push"]>;
    try {
      messages = reader.push(chunk);
    } catch (err) {
      stream.destroy(err as Error);
      return;
    }
    for (const m of messages) {
      if (m.opcode === OPCODE.ping) socket.write(encodeFrame(OPCODE.pong, m.payload, true));
      else if (m.opcode === OPCODE.close) finish();
      else if (m.opcode === OPCODE.binary && m.payload.length > 1) {
        const channel = m.payload[0];
        const data = m.payload.subarray(1);
        if (channel === STDOUT) {
          if (!stream.push(data)) socket.pause();
        } else if (channel === STDERR) {
          stderr = (stderr + data.toString("utf8")).slice(-STDERR_KEPT);
        } else if (channel === ERROR) {
          status += data.toString("utf8");
        }
      }
    }
  };
  socket.on("data", onBytes);
  socket.on("end", finish);
  socket.on("close", finish);
  socket.on("error", (err) => {
    if (!closed) stream.destroy(new Error(`exec stream from pod ${target.pod} broke`, { cause: err }));
  });
  if (head.length > 0) onBytes(head);
  return stream;
}

/** null when the exec's Status says the command succeeded, else how it failed. */
function exitFailure(statusJson: string): string | null {
  if (statusJson.trim() === "") return "ended without an exit status (the connection was cut)";
  try {
    const s = JSON.parse(statusJson) as {
      status?: string;
      message?: string;
      details?: { causes?: { reason?: string; message?: string }[] };
    };
    if (s.status === "Success") return null;
    const code = s.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
    return code !== undefined ? `exited with code ${code}` : `failed: ${s.message ?? "unknown error"}`;
  } catch {
    return `failed: ${statusJson.slice(0, 200)}`;
  }
}

/** The last line the command wrote on stderr, without the `etcd-backup: ` of our own CLI's error lines. */
function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.at(-1) ?? "").replace(/^etcd-backup: /, "");
}
