import type { IncomingHttpHeaders } from "node:http";

/** An answer to a request on a resumable upload session: status, headers and the body as text. */
export interface SessionAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * One request on a resumable upload session URI (a PUT of a chunk, a status query, a cancelling DELETE), over
 * node:http(s) with the body written as is: no copy of the chunk, and the socket takes it at the speed the server
 * reads (undici's fetch, tried first, wraps a buffer body in a web stream and ran at half the throughput, with
 * several chunk copies alive at once). The answer's body is read whole: GCS answers these with at most an object
 * resource. Aborting the signal destroys the request.
 */
export async function sessionRequest(
  uri: string,
  method: "PUT" | "DELETE",
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  signal: AbortSignal,
): Promise<SessionAnswer> {
  const url = new URL(uri);
  const { request } = url.protocol === "https:" ? await import("node:https") : await import("node:http");
  return await new Promise<SessionAnswer>((resolve, reject) => {
    const req = request(
      url,
      { method, headers: { ...headers, "Content-Length": String(body?.length ?? 0) }, signal },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("error", reject);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(parts).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body && body.length > 0 ? body : undefined);
  });
}
