/**
 * Ports on 127.0.0.1 for a child process of ours (the replay etcd, the test restore's etcd) to listen on.
 *
 * Asking the kernel for port 0 and closing it again hands out a port from the ephemeral range, the same range
 * the kernel draws from for every outgoing connection. Between the close and the child's bind, any connection
 * on the machine may take it, and the child then fails with "address already in use". So a port is drawn at
 * random from below that range (Linux: `net.ipv4.ip_local_port_range`, 32768-60999 by default), where the
 * kernel never places an outgoing connection, and checked by binding it. Ports handed out by this process are
 * not handed out again for a while, so two children started together never share one. The draw also stays
 * below 30000, where Kubernetes NodePorts begin (30000-32767): on a node, kube-proxy may redirect local traffic to
 * such a port to a Service.
 *
 * Where the range cannot be read (not Linux) or leaves too little room below it, the kernel's choice is used.
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";

/** The lowest port drawn from; below it sit well-known and registered services. */
const LOWEST = 10_000;
/** The draw ends below Kubernetes' default NodePort range. */
const NODE_PORTS_START = 30_000;
/** How long a port handed out stays out of the draw (the child binds it well within this). */
const HELD_MS = 120_000;
const handedOut = new Map<number, number>();

/** `count` distinct ports on 127.0.0.1 that were free a moment ago and that no outgoing connection takes. */
export async function loopbackPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  const below = Math.min(await ephemeralRangeStart(), NODE_PORTS_START);
  const now = Date.now();
  for (const [port, at] of handedOut) if (now - at > HELD_MS) handedOut.delete(port);
  for (let tries = 0; ports.length < count; tries++) {
    let port: number;
    if (below - LOWEST >= 1000 && tries < 200) {
      port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
      if (handedOut.has(port) || ports.includes(port) || !(await bindable(port))) continue;
    } else {
      port = await kernelChoice();
      if (ports.includes(port)) continue;
    }
    ports.push(port);
    handedOut.set(port, now);
  }
  return ports;
}

/** The first port of the kernel's ephemeral range, or LOWEST when it cannot be read. */
async function ephemeralRangeStart(): Promise<number> {
  try {
    const text = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8");
    const first = Number(text.trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 && first <= 65535 ? first : LOWEST;
  } catch {
    return LOWEST;
  }
}

async function bindable(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function kernelChoice(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no loopback port")),
      );
    });
  });
}
