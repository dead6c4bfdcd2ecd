import { UsageError } from "../errors.ts";

/** Where an HTTP endpoint listens; `host` undefined: every address (IPv4 and IPv6). */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/**
 * The one listen-address parser (the daemon's and the operator's `--metrics-addr`): `host:port`, `:port` (every
 * address) or `[v6]:port`; port 0 asks the system for a free one. Returns null for anything else.
 */
export function parseListenAddress(text: string): ListenAddress | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? m[2];
  return { host: host ? host : undefined, port };
}

/** The tail of a one-line error for an address `parseListenAddress` refuses. */
export const LISTEN_ADDRESS_PROBLEM = "is not host:port, :port or [v6]:port";

/** Reads `--metrics-addr`-like flags; throws a one-line `UsageError` naming the flag. */
export function listenAddressSetting(flag: string, text: string): ListenAddress {
  const addr = parseListenAddress(text);
  if (!addr) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: ${LISTEN_ADDRESS_PROBLEM}`,
      "use e.g. :9090 or 127.0.0.1:9090",
    );
  }
  return addr;
}
