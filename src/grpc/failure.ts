import type { ServiceError } from "@grpc/grpc-js";

// Node's TLS verification codes and OpenSSL alert texts, as people read them.
const SERVER_CERT_PROBLEMS: [RegExp, string][] = [
  [/self[- ]signed certificate/i, "the server's certificate is not signed by a trusted CA"],
  [/unable to (verify|get local issuer)/i, "the server's certificate is not signed by a trusted CA"],
  [/certificate has expired/i, "the server's certificate has expired"],
  [/altnames|does not match certificate/i, "the server's certificate does not name this host"],
];
const ALERTS: [RegExp, string][] = [
  [/alert certificate required|alert number 116/i, "the server requires a client certificate"],
  [/alert certificate expired|alert number 45/i, "the server rejected the client certificate: expired"],
  [/alert unknown ca|alert number 48/i, "the server rejected the client certificate: unknown CA"],
  [/alert bad certificate|alert number 42/i, "the server rejected the client certificate"],
  [/alert handshake failure|alert number 40/i, "TLS handshake failed"],
  [
    /wrong version number|packet length too long/i,
    "TLS handshake failed: the server does not speak TLS on this port",
  ],
];

/**
 * The useful part of a gRPC failure, on one line: "connect ECONNREFUSED 127.0.0.1:2379" or "the server's
 * certificate is not signed by a trusted CA", rather than "14 UNAVAILABLE: No connection established..."
 * followed by an OpenSSL error stack.
 */
export function grpcReason(err: ServiceError | Error | null | undefined): string {
  if (!err) return "";
  const details = (err as ServiceError).details ?? err.message;
  const last = /Last error: (?:Error: )?(.*)$/s.exec(details);
  const text = (last?.[1] ?? details).replace(/\.? ?Resolution note:.*$/s, "").trim();
  for (const [re, explanation] of [...SERVER_CERT_PROBLEMS, ...ALERTS]) {
    if (re.test(text)) return `${explanation} (${shortOpenSsl(text)})`;
  }
  return shortOpenSsl(text);
}

/** "405D...:error:0A000412:SSL routines:ssl3_read_bytes:ssl/tls alert bad certificate:../deps/..." -> the reason. */
function shortOpenSsl(text: string): string {
  const m = /error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)/.exec(text);
  return (m?.[1] ?? text)
    .replace(/; if the root CA is installed locally.*$/, "")
    .replace(/\s+/g, " ")
    .trim();
}
