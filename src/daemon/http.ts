import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HttpHandlers {
  /** Prometheus text exposition and its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Null when ready; otherwise why not (one line, no secret). */
  notReady(): string | null;
  statusPage(): string;
  /** The status page's facts as JSON, served at `/status.json` when given. */
  statusJson?(): string;
  /** The body of a 200 `/readyz` (default `ready`): the operator says `leader` or `standby`. */
  readyBody?(): string;
}

/**
 * The daemon's HTTP endpoints: `/metrics`, `/healthz` (the process serves), `/readyz` (200 while the last
 * success is recent enough, 503 with the reason otherwise), `/`, the status page, and `/status.json` when the
 * caller has one. Shared by the daemon, `log --serve` and the operator. GET and HEAD only.
 */
export function createHttpServer(handlers: HttpHandlers): Server {
  return createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, {
        "content-type": type,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        ...(type.startsWith("text/html")
          ? { "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:" }
          : {}),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    try {
      switch (path) {
        case "/metrics": {
          const m = await handlers.metrics();
          return send(200, m.contentType, m.body);
        }
        case "/healthz":
          return send(200, "text/plain; charset=utf-8", "ok\n");
        case "/readyz": {
          const why = handlers.notReady();
          return why === null
            ? send(200, "text/plain; charset=utf-8", `${handlers.readyBody?.() ?? "ready"}\n`)
            : send(503, "text/plain; charset=utf-8", `not ready: ${why}\n`);
        }
        case "/":
          return send(200, "text/html; charset=utf-8", handlers.statusPage());
        case "/status.json":
          if (handlers.statusJson) return send(200, "application/json", handlers.statusJson());
          return send(404, "text/plain; charset=utf-8", "not found\n");
        default:
          return send(404, "text/plain; charset=utf-8", "not found\n");
      }
    } catch {
      return send(500, "text/plain; charset=utf-8", "internal error\n");
    }
  });
}

/** Listens and resolves to the bound address (useful with port 0). */
export async function listen(server: Server, host: string | undefined, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
