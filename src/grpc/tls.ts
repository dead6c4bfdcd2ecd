import { readFile } from "node:fs/promises";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { Hinted } from "../errors.ts";
import { grpc } from "./load.ts";

/** TLS material for a gRPC client, as file paths (etcdctl style) or PEM contents (talosconfig style). */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify?: boolean;
  /** PEM contents given directly (the operator reads them from a Kubernetes Secret); used instead of the files. */
  pem?: TlsPem;
}

export interface TlsPem {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipVerify?: boolean;
}

async function readPem(path: string | undefined, what: string, flag: string): Promise<Buffer | undefined> {
  if (!path) return undefined;
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Hinted(`cannot read ${what} ${path}: ${code ?? (err as Error).message}`, `check ${flag}`);
  }
}

/** Reads the files named by etcdctl-style flags. Throws a one-line error naming the flag on a missing file. */
export async function loadTlsFiles(files: TlsFiles): Promise<TlsPem> {
  if (files.pem) return { ...files.pem, insecureSkipVerify: files.insecureSkipVerify ?? false };
  if ((files.certFile && !files.keyFile) || (!files.certFile && files.keyFile)) {
    throw new Hinted("client certificate and key must be given together", "pass both --cert and --key");
  }
  return {
    ca: await readPem(files.caFile, "CA bundle", "--cacert"),
    cert: await readPem(files.certFile, "client certificate", "--cert"),
    key: await readPem(files.keyFile, "client key", "--key"),
    insecureSkipVerify: files.insecureSkipVerify ?? false,
  };
}

/**
 * gRPC channel credentials. Verification of the server certificate stays on unless `insecureSkipVerify`,
 * in which case both the chain and the host name are accepted as they come. Needs `loadGrpc()` first.
 */
export function channelCredentials(tls: TlsPem): ChannelCredentials {
  const verify = tls.insecureSkipVerify
    ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
    : undefined;
  return grpc().credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, verify);
}

export function insecureCredentials(): ChannelCredentials {
  return grpc().credentials.createInsecure();
}
