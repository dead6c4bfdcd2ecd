import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { OperatorMetrics } from "../../src/operator/metrics.ts";
import { runOperator } from "../../src/operator/operator.ts";
import { backupSpec, bucketKeys, type Harness, quietLog, startHarness, waitFor } from "./harness.ts";

describe("operator shutdown", () => {
  let h: Harness;
  const sockets = new Set<Socket>();
  // An endpoint that accepts connections and never answers: the backup stays in flight until aborted.
  const blackHole = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  before(async () => {
    h = await startHarness();
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackHole.close(r));
    await h.stop();
  });

  it("aborts backups in flight when stopped: nothing stored, the EtcdBackup back to Pending (Aborted)", async () => {
    const port = (blackHole.address() as { port: number }).port;
    h.api.put("etcdbackups", "default", {
      apiVersion: "etcd-backup.dev/v1alpha1",
      kind: "EtcdBackup",
      metadata: { name: "in-flight", namespace: "default" },
      spec: backupSpec(h, { source: { etcd: { endpoints: [`127.0.0.1:${port}`], dialTimeoutSeconds: 60 } } }),
    });
    const stop = new AbortController();
    const metrics = new OperatorMetrics();
    const running = runOperator(
      { kube: h.kube, namespace: "default", maxConcurrent: 1, identity: "t", metrics, log: quietLog() },
      stop.signal,
    );
    const get = () =>
      h.api.get("etcdbackups", "default", "in-flight") as unknown as {
        status?: { phase?: string; conditions?: { type: string; reason: string }[] };
      };
    await waitFor("Running", () => (get()?.status?.phase === "Running" ? true : undefined));
    await waitFor("a connection to the black hole", () => (sockets.size > 0 ? true : undefined));
    const t0 = Date.now();
    stop.abort();
    await running;
    assert.ok(Date.now() - t0 < 5_000, "stopping does not wait for the dial timeout");
    const b = get();
    assert.equal(b.status?.phase, "Pending");
    assert.equal(b.status?.conditions?.find((c) => c.type === "Progressing")?.reason, "Aborted");
    assert.deepEqual(await bucketKeys(h), []);
    assert.equal((await metrics.inFlight.get()).values[0]?.value, 0);
  });
});
