import type { Client } from "@grpc/grpc-js";
import { grpcReason } from "./failure.ts";
import { grpc } from "./load.ts";

/** Name of the errors `waitConnected` throws, so callers can tell "could not connect" from a failed call. */
export const DIAL_ERROR = "DialError";

function dialError(message: string): Error {
  const err = new Error(message);
  err.name = DIAL_ERROR;
  return err;
}

/**
 * Waits until the client's channel is connected, at most `timeoutMs`; an abort ends the wait at once.
 * On failure the reason is the one gRPC saw last (refused, TLS verification...): gRPC only reports it
 * through a call, so a cheap unary call to `probeMethod` reads it.
 */
export async function waitConnected(
  client: Client,
  timeoutMs: number,
  probeMethod: string,
  signal?: AbortSignal,
): Promise<void> {
  const { connectivityState } = grpc();
  const channel = client.getChannel();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const state = channel.getConnectivityState(true);
    if (state === connectivityState.READY) return;
    if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) {
      throw await probeFailure(client, probeMethod);
    }
    if (Date.now() >= deadline)
      throw dialError(`no connection within the dial timeout of ${timeoutMs / 1000}s`);
    await new Promise<void>((resolve) => {
      const onAbort = () => resolve();
      signal?.addEventListener("abort", onAbort, { once: true });
      channel.watchConnectivityState(state, deadline, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }
}

async function probeFailure(client: Client, method: string): Promise<Error> {
  return await new Promise((resolve) => {
    client.makeUnaryRequest(
      method,
      (v: Buffer) => v,
      (v: Buffer) => v,
      Buffer.alloc(0),
      { deadline: Date.now() + 1000 },
      (err) => resolve(dialError(grpcReason(err) || "connection failed")),
    );
  });
}
