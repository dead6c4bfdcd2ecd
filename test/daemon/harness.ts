import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { CLI } from "../fixtures/cli.ts";
import { assertNoSecrets, registerCommandSecrets } from "../fixtures/secrets.ts";

/** A daemon started from the built CLI, with everything it printed. */
export interface DaemonProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** JSON log lines parsed so far (non-JSON lines are skipped). */
  lines(): Record<string, unknown>[];
  exited: Promise<number | null>;
  /** SIGTERM, then wait for the exit code; fails when anything it printed holds a secret (fixtures/secrets.ts). */
  stop(): Promise<number | null>;
}

export function spawnDaemon(args: string[], env: NodeJS.ProcessEnv): DaemonProcess {
  registerCommandSecrets(args, env);
  const child = spawn(process.execPath, [CLI, "daemon", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => out,
    lines: () =>
      out.split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const code = await exited;
      clearTimeout(timer);
      assertNoSecrets(out, `the output of etcd-backup daemon ${args.join(" ")}`);
      return code;
    },
  };
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Prometheus text format as `name{labels}` → value (labels as written, in the order prom-client writes them). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export async function scrape(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`);
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/**
 * A TCP proxy on a fixed loopback port whose upstream can be changed or cut: the daemon keeps one endpoint
 * while etcd is stopped and restarted (on new ports). `bytesPerSecond` slows the upstream-to-client direction.
 */
export interface TcpProxy {
  port: number;
  setTarget(target: { host: string; port: number } | null): void;
  close(): Promise<void>;
}

export async function startProxy(options: { bytesPerSecond?: number } = {}): Promise<TcpProxy> {
  let target: { host: string; port: number } | null = null;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    if (!target) {
      client.destroy();
      return;
    }
    const up = connect(target.port, target.host);
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    const cut = () => {
      client.destroy();
      up.destroy();
    };
    up.on("error", cut);
    client.on("error", cut);
    client.on("close", cut);
    up.on("close", cut);
    client.pipe(up);
    if (!options.bytesPerSecond) {
      up.pipe(client);
    } else {
      const rate = options.bytesPerSecond;
      up.on("data", (chunk: Buffer) => {
        up.pause();
        client.write(chunk);
        setTimeout(() => up.resume(), Math.ceil((chunk.length / rate) * 1000));
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    setTarget(t) {
      target = t;
      if (!t) for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** host and port of `http://127.0.0.1:2379`. */
export function hostPort(endpoint: string): { host: string; port: number } {
  const u = new URL(endpoint);
  return { host: u.hostname, port: Number(u.port) };
}
