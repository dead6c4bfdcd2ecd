/**
 * An abort while etcd has accepted the Snapshot call but sent nothing yet (a large or busy member takes a while
 * before its first byte): `open()` fails with the abort's reason, and nothing is thrown anywhere else. The
 * server here is a stand-in that accepts Maintenance/Snapshot and never answers; the real etcd sends its first
 * bytes too quickly to stop in between.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { EtcdSource } from "../../src/source/etcd.ts";
import { freePort } from "../fixtures/ports.ts";

test("an abort before etcd's first snapshot byte fails open() with the reason, nothing thrown", async () => {
  const server = new Server();
  let accepted = 0;
  let cancelled = 0;
  const raw = (v: Buffer) => v;
  server.addService(
    {
      Snapshot: {
        path: "/etcdserverpb.Maintenance/Snapshot",
        requestStream: false,
        responseStream: true,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    },
    {
      Snapshot: (call: ServerWritableStream<Buffer, Buffer>) => {
        accepted++;
        call.on("cancelled", () => cancelled++);
      },
    },
  );
  const port = await freePort();
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  try {
    const source = new EtcdSource({ endpoints: [`127.0.0.1:${port}`], tls: {}, dialTimeoutMs: 5000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopped by SIGTERM")), 500);
    await assert.rejects(source.open(controller.signal), /stopped by SIGTERM/);
    assert.equal(accepted, 1, "the call had reached the server");
    for (let i = 0; i < 50 && cancelled === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(cancelled, 1, "the call was cancelled, not left open");
  } finally {
    server.forceShutdown();
  }
});
