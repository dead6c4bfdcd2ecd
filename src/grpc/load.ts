import type * as Grpc from "@grpc/grpc-js";

let loaded: typeof Grpc | undefined;

/**
 * Loads @grpc/grpc-js on first use: importing it costs every command ~0.13 s at start, and only the commands
 * that talk to etcd or Talos need it. Call this before anything that builds a client or credentials.
 */
export async function loadGrpc(): Promise<typeof Grpc> {
  loaded ??= await import("@grpc/grpc-js");
  return loaded;
}

/** The loaded module; only valid once `loadGrpc()` has resolved. */
export function grpc(): typeof Grpc {
  if (!loaded) throw new Error("@grpc/grpc-js is not loaded yet");
  return loaded;
}

/** gRPC status codes (fixed by the protocol), usable without loading the library. */
export const GrpcStatus = {
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;
