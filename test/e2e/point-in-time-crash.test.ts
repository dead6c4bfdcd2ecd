import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readLogCatalog } from "../../src/point-in-time/catalog.ts";
import { readSegmentPayload } from "../../src/point-in-time/log-store.ts";
import { segmentKey } from "../../src/point-in-time/names.ts";
import { parseSegment } from "../../src/point-in-time/segment-format.ts";
import { verifyLog } from "../../src/point-in-time/verify-log.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import type { EtcdKv } from "../fixtures/etcd-kv.ts";
import { freePort } from "../fixtures/ports.ts";
import type { SeededRandom } from "../fixtures/seeded-random.ts";
import { assertSameAsLiveAt, startLog, useLogTestBed, waitForReach } from "../point-in-time/harness.ts";
import { currentRevision } from "../point-in-time/workload.ts";

/** Writes one key after another until stopped; resolves to the number of writes. */
function backgroundWriter(kv: EtcdKv, rng: SeededRandom): { stop(): Promise<number> } {
  let running = true;
  let writes = 0;
  const done = (async () => {
    while (running) {
      await kv.txn([{ key: `/crash/k-${rng.int(0, 200)}`, value: rng.bytes(rng.int(1, 512)) }]);
      writes++;
      await sleep(rng.int(0, 15));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return writes;
    },
  };
}

describe("point-in-time: a log killed mid-segment", () => {
  const bed = useLogTestBed("point-in-time: a log killed mid-segment");

  test("SIGKILL loses only the open segment; the restart resumes at the last closed revision + 1, no revision missing or twice", async () => {
    const { etcd, work, dest, store, kv, where, rng } = bed.get();
    await kv.putAll([{ key: "/crash/seed", value: "x" }]);
    assertOk(await runCli(["save", "--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt"]));
    const base = await currentRevision(kv);
    const args = ["--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt", "--segment-interval", "2s"];

    const writer = backgroundWriter(kv, rng);
    const first = startLog(args);
    // Late enough for a first close even on a loaded machine, at a random moment inside a segment.
    await sleep(rng.int(4500, 7000) + rng.int(0, 1999));
    await first.kill();
    const writtenAtKill = await currentRevision(kv);
    const [afterKill] = await readLogCatalog(store, { cluster: "etcd" });
    const closedAtKill = afterKill!.chains.at(-1)!.reach;
    assert.ok(closedAtKill > base, `${where}: nothing was closed before the kill\n${first.stderr()}`);
    assert.ok(
      writtenAtKill > closedAtKill,
      `${where}: the kill found no open segment (closed ${closedAtKill}, written ${writtenAtKill})`,
    );
    // A segment object the killed log had stored without its manifest (not closed): the restart removes it.
    const unclosed = segmentKey("etcd", base, closedAtKill + 1, closedAtKill + 5, false);
    await store.put(unclosed, Readable.from([Buffer.from("not a closed segment")]));

    await sleep(1500);
    const second = startLog(args);
    await sleep(3000);
    await writer.stop();
    const last = await currentRevision(kv);
    try {
      await waitForReach(store, "etcd", last, second);
    } finally {
      assert.equal(await second.stop(), 0, second.stderr());
    }
    assert.match(
      second.stderr(),
      new RegExp(`resuming chain ${base} after its last closed revision ${closedAtKill}\\b`),
    );
    assert.match(second.stderr(), /removing unclosed segment/);
    assert.doesNotMatch(second.stderr(), /gap/);

    const [log] = await readLogCatalog(store, { cluster: "etcd" });
    assert.equal(log!.chains.length, 1, `${where}: one chain expected`);
    const chain = log!.chains[0]!;
    assert.deepEqual(chain.holes, []);
    assert.deepEqual(chain.unclosed, []);
    assert.equal(log!.gaps.length, 0);
    const seen: number[] = [];
    for (const s of chain.segments) {
      const payload = await readSegmentPayload(store, s.manifest, s.key, {});
      for (const r of parseSegment(payload)) if (r.kind === "revision") seen.push(r.revision);
    }
    const expected = Array.from({ length: last - base }, (_, i) => base + 1 + i);
    assert.equal(
      seen.length,
      expected.length,
      `${where}: ${seen.length} revisions logged, ${expected.length} written`,
    );
    assert.deepEqual(seen, expected, `${where}: revisions missing, repeated or out of order`);

    // The chain verifies; a damaged segment is named.
    const verified = await verifyLog(store);
    assert.deepEqual(verified.findings, []);
    assert.equal(verified.revisions, last - base);
    const victim = chain.segments[Math.floor(chain.segments.length / 2)]!.key;
    const file = join(dest, victim);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    writeFileSync(join(work, "victim.bak"), readFileSync(file));
    writeFileSync(file, bytes);
    const damaged = await verifyLog(store);
    assert.equal(damaged.findings.length, 1, JSON.stringify(damaged.findings));
    assert.equal(damaged.findings[0]!.key, victim);
    assert.equal(damaged.findings[0]!.severity, "error");
    writeFileSync(file, readFileSync(join(work, "victim.bak")));

    const out = join(work, "last.db");
    // With 64 guarded Txns in flight: etcd takes some out of order, the guards refuse them, the result is exact.
    const restored = await runCli(["restore", "--revision", String(last), "--to", dest, "--to-file", out], {
      env: { ETCD_BACKUP_REPLAY_WINDOW: "64" },
    });
    assertOk(restored);
    assert.match(restored.stderr, /\(\d+ rounds resent\)/);
    await assertSameAsLiveAt(etcd, out, last, where);
    process.stdout.write(
      `# ${where}: base ${base}, closed ${closedAtKill} at the kill with ${writtenAtKill} written, last ${last}\n`,
    );
  });
});

describe("point-in-time: a log stopped in the middle of a burst of writes", () => {
  const bed = useLogTestBed("point-in-time: a log stopped in the middle of a burst of writes");

  test("SIGTERM closes a last segment holding every revision etcd committed before it", async () => {
    const { etcd, dest, store, kv, where, rng } = bed.get();
    await kv.putAll([{ key: "/burst/seed", value: "x" }]);
    assertOk(await runCli(["save", "--endpoints", etcd.endpoint, "--to", dest, "--no-encrypt"]));
    // The log reads etcd through a proxy that holds etcd's answers back for 400 ms, so at the stop its watch
    // is well behind what etcd has committed. A long interval: nothing closes on time, only the stop closes.
    const proxy = await startDelayingProxy(new URL(etcd.endpoint), 400);
    after(() => proxy.stop());
    const log = startLog([
      "--endpoints",
      proxy.endpoint,
      "--to",
      dest,
      "--no-encrypt",
      "--segment-interval",
      "5m",
    ]);
    let writing = true;
    let committedBeforeStop = 0;
    let code: number | null = null;
    for (let i = 0; i < 100 && !/watching/.test(log.stderr()); i++) await sleep(100);
    assert.match(log.stderr(), /watching/, `${where}: the log never started watching`);
    // Writers still writing when the log is stopped: the watch is behind etcd at that moment.
    const writers = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (writing) {
          await kv.txn([{ key: `/burst/k-${rng.int(0, 999)}`, value: rng.bytes(rng.int(100, 4000)) }]);
        }
      }),
    );
    try {
      await sleep(rng.int(1500, 2500));
      committedBeforeStop = await currentRevision(kv);
      code = await log.stop();
    } finally {
      writing = false;
      await writers;
      if (code === null) await log.kill();
    }
    assert.equal(code, 0, log.stderr());
    const [found] = await readLogCatalog(store, { cluster: "etcd" });
    const chain = found!.chains.at(-1)!;
    assert.ok(
      chain.reach >= committedBeforeStop,
      `${where}: the stop closed the log at ${chain.reach}; etcd had committed ${committedBeforeStop} before it\n${log.stderr()}`,
    );
    assert.deepEqual(chain.holes, []);
  });
});

/** A loopback TCP proxy that delivers the server's bytes `delayMs` late, in order (the client's go at once). */
async function startDelayingProxy(
  target: URL,
  delayMs: number,
): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) sockets.add(s);
    client.pipe(upstream);
    upstream.on("data", (d: Buffer) => {
      setTimeout(() => client.writable && client.write(d), delayMs);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
