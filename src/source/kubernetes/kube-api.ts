import { existsSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { type RequestOptions, request } from "node:https";
import type { Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { Hinted, UsageError } from "../../errors.ts";

/** Where a ServiceAccount's token and CA are mounted in a pod. */
export const IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How to find the API server: a kubeconfig file (or KUBECONFIG, ~/.kube/config), else in-cluster credentials. */
export interface KubeAccessOptions {
  /** A kubeconfig file; absent: $KUBECONFIG (a list, merged as kubectl does), ~/.kube/config, then in-cluster. */
  kubeconfig?: string;
  /** The kubeconfig context; absent: its current-context. */
  context?: string;
  env?: Record<string, string | undefined>;
}

/** An error answer of the API server, with its HTTP code and Status reason. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly code: number;
  readonly reason: string;
  constructor(message: string, code: number, reason: string) {
    super(message);
    this.code = code;
    this.reason = reason;
  }
}

/**
 * A small client of the Kubernetes API: JSON requests and WebSocket upgrades, authenticated as a kubeconfig
 * context says (client certificate, bearer token, or an exec plugin, applied by @kubernetes/client-node's
 * KubeConfig) or with the pod's ServiceAccount.
 */
export class KubeApi {
  /** The API server's URL. Never holds a credential. */
  readonly server: string;
  /** "context NAME of FILE" or "in-cluster ServiceAccount", for messages. */
  readonly description: string;
  private readonly config: KubeConfig;

  private constructor(config: KubeConfig, description: string) {
    this.config = config;
    this.description = description;
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new UsageError(`${description}: names no cluster`, "check the kubeconfig's contexts");
    this.server = cluster.server.replace(/\/+$/, "");
  }

  /** Loads credentials as kubectl would; throws a one-line `UsageError` naming what cannot be used. */
  static load(options: KubeAccessOptions = {}): KubeApi {
    const env = options.env ?? process.env;
    const config = new KubeConfig();
    let description: string;
    try {
      if (options.kubeconfig) {
        if (!existsSync(options.kubeconfig))
          throw new UsageError(`kubeconfig ${options.kubeconfig} does not exist`, "check --kubeconfig");
        config.loadFromFile(options.kubeconfig);
        description = options.kubeconfig;
      } else if (env.KUBECONFIG || existsSync(`${env.HOME ?? ""}/.kube/config`)) {
        const files = (env.KUBECONFIG ?? `${env.HOME}/.kube/config`).split(":").filter(Boolean);
        const found = files.filter((f) => existsSync(f));
        if (found.length === 0)
          throw new UsageError(`KUBECONFIG names no existing file (${files.join(", ")})`, "check KUBECONFIG");
        // kubectl's merge: the first file that sets a value wins, for the current context as for each entry.
        config.loadFromFile(found[0]!);
        for (const f of found.slice(1)) {
          const next = new KubeConfig();
          next.loadFromFile(f);
          mergeFirstWins(config, next);
        }
        description = found.join(":");
      } else if (existsSync(`${IN_CLUSTER_DIR}/token`) && env.KUBERNETES_SERVICE_HOST) {
        config.loadFromCluster();
        return new KubeApi(config, "in-cluster ServiceAccount");
      } else {
        throw new UsageError(
          "no kubeconfig found (no --kubeconfig, KUBECONFIG or ~/.kube/config, and not in a pod)",
          "pass --kubeconfig FILE",
        );
      }
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(
        `cannot read kubeconfig ${options.kubeconfig ?? env.KUBECONFIG ?? "~/.kube/config"}: ${(err as Error).message.split("\n")[0]}`,
        "check that it is a kubeconfig (kubectl config view)",
      );
    }
    if (options.context) {
      if (!config.getContextObject(options.context)) {
        const known = config.getContexts().map((c) => c.name);
        throw new UsageError(
          `kubeconfig ${description} has no context ${JSON.stringify(options.context)}`,
          `use one of: ${known.join(", ") || "(none)"}`,
        );
      }
      config.setCurrentContext(options.context);
    }
    const contextName = config.getCurrentContext();
    if (!contextName || !config.getContextObject(contextName))
      throw new UsageError(`kubeconfig ${description} has no current context`, "pass --context NAME");
    const user = config.getCurrentUser();
    if (user?.authProvider) {
      throw new UsageError(
        `kubeconfig user ${user.name} authenticates with auth-provider ${JSON.stringify(user.authProvider.name ?? "")}, which kubectl dropped in 1.26`,
        "use a client certificate, a token or an exec credential plugin",
      );
    }
    if (user?.username || user?.password) {
      throw new UsageError(
        `kubeconfig user ${user.name} uses basic authentication, which Kubernetes removed in 1.19`,
        "use a client certificate, a token or an exec credential plugin",
      );
    }
    return new KubeApi(config, `context ${contextName} of ${description}`);
  }

  /** The credentials the kubeconfig holds (a token, an embedded key), for the process's redactor. Never print. */
  secretValues(): string[] {
    const user = this.config.getCurrentUser();
    const out: string[] = [];
    if (user?.token) out.push(user.token);
    if (user?.keyData) out.push(user.keyData, Buffer.from(user.keyData, "base64").toString("utf8").trim());
    return out;
  }

  /** TLS and authentication options for one request (an exec plugin may run here). */
  private async options(
    method: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<RequestOptions> {
    const url = new URL(this.server + path);
    const opts: RequestOptions = {
      method,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || 443,
      path: url.pathname + url.search,
      headers: { ...headers },
    };
    try {
      await this.config.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new Hinted(
        `cannot get credentials for ${this.description}: ${(err as Error).message.split("\n")[0]}`,
        "check the kubeconfig's user (kubectl auth whoami)",
      );
    }
    return opts;
  }

  /** A JSON request; resolves with the parsed body, rejects with `KubeApiError` on an error status. */
  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined) {
      headers["content-type"] = "application/json";
      // Node sends a DELETE's body neither chunked nor with a length unless told: always give the length.
      headers["content-length"] = String(Buffer.byteLength(text));
    }
    const opts = await this.options(method, path, headers);
    if (signal) opts.signal = signal;
    return await new Promise<T>((resolve, reject) => {
      const req = request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            try {
              resolve(JSON.parse(text) as T);
            } catch {
              reject(new Error(`${method} ${path}: the API server answered ${status} with no JSON`));
            }
            return;
          }
          reject(statusError(method, path, status, text));
        });
      });
      req.on("error", (err) => reject(this.connectError(err)));
      req.end(text);
    });
  }

  /**
   * Opens a WebSocket (GET with Upgrade) offering `protocols`; resolves with the socket, the bytes already read
   * past the handshake and the protocol the server chose, or rejects with the API server's error.
   */
  async upgrade(
    path: string,
    protocols: string[],
    key: string,
    signal?: AbortSignal,
  ): Promise<{ socket: Socket; head: Buffer; response: IncomingMessage }> {
    const opts = await this.options("GET", path, {
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-version": "13",
      "sec-websocket-key": key,
      "sec-websocket-protocol": protocols.join(", "),
    });
    if (signal) opts.signal = signal;
    return await new Promise((resolve, reject) => {
      const req = request(opts);
      req.on("upgrade", (response, socket, head) => resolve({ socket, head, response }));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          reject(
            statusError("GET", path.split("?")[0]!, res.statusCode ?? 0, Buffer.concat(chunks).toString()),
          ),
        );
      });
      req.on("error", (err) => reject(this.connectError(err)));
      req.end();
    });
  }

  private connectError(err: Error): Error {
    if (err.name === "AbortError") return err;
    const code = (err as NodeJS.ErrnoException).code;
    return new Hinted(
      `cannot reach the API server ${this.server}: ${code ?? err.message}`,
      `check ${this.description} (kubectl cluster-info)`,
    );
  }
}

/** The API server's Status body as an error: its message (which names the user, verb and resource on a 403). */
function statusError(method: string, path: string, status: number, text: string): KubeApiError {
  let message = text.trim().split("\n")[0]?.slice(0, 300) || `HTTP ${status}`;
  let reason = String(status);
  try {
    const body = JSON.parse(text) as { message?: string; reason?: string };
    if (body.message) message = body.message;
    if (body.reason) reason = body.reason;
  } catch {}
  return new KubeApiError(`${method} ${path}: ${message}`, status, reason);
}

/** Adds what `next` has and `into` lacks (entries by name, the current context), as kubectl merges KUBECONFIG. */
function mergeFirstWins(into: KubeConfig, next: KubeConfig): void {
  for (const c of next.getClusters()) if (!into.getCluster(c.name)) into.addCluster(c);
  for (const u of next.getUsers()) if (!into.getUser(u.name)) into.addUser(u);
  for (const x of next.getContexts()) if (!into.getContextObject(x.name)) into.addContext(x);
  if (!into.getCurrentContext() && next.getCurrentContext()) into.setCurrentContext(next.getCurrentContext());
}
