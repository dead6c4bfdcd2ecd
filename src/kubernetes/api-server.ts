import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/**
 * A minimal REST client for one Kubernetes API server, configured from a kubeconfig (server, CA, client
 * certificate, token or exec credentials: @kubernetes/client-node's KubeConfig applies them). Only what
 * restore-object needs: discovery, GET and PATCH of one object, with the server's Status kept on errors.
 */

/** The API server's answer to a failed call: HTTP code, reason (`NotFound`, `Conflict`...) and message. */
export class ApiServerError extends Error {
  override name = "ApiServerError";
  readonly code: number;
  readonly reason: string;
  constructor(message: string, code: number, reason: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export class ApiServer {
  readonly server: string;
  readonly skipsTlsVerify: boolean;
  private readonly config: KubeConfig;

  constructor(config: KubeConfig) {
    const cluster = config.getCurrentCluster();
    if (!cluster?.server) throw new Error("the kubeconfig names no cluster server for its current context");
    this.config = config;
    this.server = cluster.server.replace(/\/+$/, "");
    this.skipsTlsVerify = cluster.skipTLSVerify === true;
  }

  /** One call; `body` is sent as is with `contentType`. Resolves with any status; rejects on transport errors. */
  async call(
    method: string,
    path: string,
    options: { body?: string; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<ApiResponse> {
    const opts: RequestOptions = { headers: {} };
    await this.config.applyToHTTPSOptions(opts);
    const url = new URL(this.server + path);
    const headers: Record<string, string> = {
      ...(opts.headers as Record<string, string>),
      Accept: "application/json",
      "User-Agent": "etcd-backup",
    };
    if (options.body !== undefined) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(options.body));
    }
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return await new Promise<ApiResponse>((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          ca: opts.ca,
          cert: opts.cert,
          key: opts.key,
          pfx: opts.pfx,
          passphrase: opts.passphrase,
          servername: opts.servername,
          rejectUnauthorized: opts.rejectUnauthorized !== false,
          ...(opts.auth ? { auth: opts.auth } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {}
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on("error", (err) => reject(new Error(`${method} ${url.origin}${path}`, { cause: err })));
      req.end(options.body);
    });
  }

  /** `call`, throwing an ApiServerError with the server's Status for any answer but 2xx. */
  async json(
    method: string,
    path: string,
    options: { body?: string; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<Record<string, unknown>> {
    const res = await this.call(method, path, options);
    if (res.status >= 200 && res.status < 300) return res.body as Record<string, unknown>;
    const status = (res.body ?? {}) as { message?: string; reason?: string };
    const message = typeof status === "object" && status.message ? status.message : `HTTP ${res.status}`;
    throw new ApiServerError(
      `${method} ${path}: ${message}`,
      res.status,
      status.reason ?? String(res.status),
    );
  }
}
