import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClusterGate, runEnd } from "../../../src/operator/fleet/cluster-gate.ts";

const at = (ms: number) => new Date(1_800_000_000_000 + ms);

describe("cluster gate: per-cluster slots and backoff", () => {
  it("a cluster holds at most perCluster slots; the others are not held back", () => {
    const g = new ClusterGate({ perCluster: 1, busyPollMs: 500 });
    assert.equal(g.waitMs("down", at(0)), 0);
    g.started("down");
    assert.equal(g.waitMs("down", at(0)), 500);
    assert.equal(g.waitMs("up", at(0)), 0);
    g.finished("down", "other", at(10));
    assert.equal(g.waitMs("down", at(10)), 0);
  });

  it("unreachable runs back off, doubling up to the cap; a success clears it; other failures do not count", () => {
    const g = new ClusterGate({ baseMs: 1000, capMs: 5000 });
    const fail = (t: number) => {
      g.started("down");
      g.finished("down", "unreachable", at(t));
    };
    fail(0);
    assert.equal(g.waitMs("down", at(0)), 1000);
    assert.equal(g.waitMs("down", at(999)), 1);
    assert.equal(g.waitMs("down", at(1000)), 0);
    fail(1000);
    assert.equal(g.waitMs("down", at(1000)), 2000);
    fail(3000);
    fail(7000);
    assert.equal(g.waitMs("down", at(7000)), 5000, "capped");
    assert.deepEqual(g.backingOff(at(7000)), ["down"]);
    g.started("down");
    g.finished("down", "other", at(12_000));
    assert.equal(g.waitMs("down", at(12_000)), 0);
    fail(12_000);
    assert.equal(
      g.waitMs("down", at(12_000)),
      5000,
      "an end other than unreachable left the count alone (still capped)",
    );
    g.started("down");
    g.finished("down", "succeeded", at(20_000));
    fail(20_000);
    assert.equal(g.waitMs("down", at(20_000)), 1000, "a success starts the doubling over");
    assert.equal(g.waitMs("up", at(20_000)), 0);
  });

  it("only an unreachable source counts against the cluster", () => {
    assert.equal(runEnd({ kind: "stored" }), "succeeded");
    assert.equal(runEnd({ kind: "failed", failure: { reason: "SourceUnreachable" } }), "unreachable");
    assert.equal(runEnd({ kind: "failed", failure: { reason: "SecretNotFound" } }), "other");
    assert.equal(runEnd({ kind: "stopped" }), "other");
  });
});
