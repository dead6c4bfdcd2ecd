import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { BufferBudget } from "../../src/stages/buffer-budget.ts";
import { memoryCgroupUnavailable, runInMemoryCgroup } from "../fixtures/memory-cgroup.ts";

const MiB = 1024 * 1024;
const LIMITED = 128 * MiB;
const MODULE = JSON.stringify(new URL("../../src/stages/buffer-budget.ts", import.meta.url).href);

describe("BufferBudget: a full GC when ArrayBuffer memory is over budget, under a tight memory limit", () => {
  it("reads memory every checkEveryBytes of the stream and collects only when over the budget", () => {
    let memory = 0;
    let reads = 0;
    let collected = 0;
    const budget = new BufferBudget({
      budgetBytes: 10 * MiB,
      headroomBytes: 4 * MiB,
      checkEveryBytes: 4 * MiB,
      memoryLimitBytes: LIMITED,
      collect: () => {
        collected++;
        memory = 2 * MiB;
      },
      arrayBuffers: () => {
        reads++;
        return memory;
      },
    });
    memory = 50 * MiB;
    budget.passed(1 * MiB); // before the first 4 MiB: not even read
    assert.equal(reads, 0);
    budget.passed(4 * MiB); // read, collected, read again (what is live)
    assert.deepEqual([reads, collected], [2, 1]);
    budget.passed(5 * MiB); // next check at 8 MiB
    assert.deepEqual([reads, collected], [2, 1]);
    budget.passed(8 * MiB); // 2 MiB after the GC: under budget
    assert.deepEqual([reads, collected], [3, 1]);
    memory = 11 * MiB;
    budget.passed(30 * MiB); // one jump over several checks is one check
    assert.deepEqual([reads, collected], [5, 2]);
    assert.equal(budget.collections, 2);
  });

  it("waits for headroom past what the last GC left live (S3 part buffers are not garbage)", () => {
    let memory = 30 * MiB;
    let collected = 0;
    const budget = new BufferBudget({
      budgetBytes: 24 * MiB,
      headroomBytes: 16 * MiB,
      checkEveryBytes: MiB,
      memoryLimitBytes: LIMITED,
      collect: () => {
        collected++;
        memory = 22 * MiB; // live after the GC
      },
      arrayBuffers: () => memory,
    });
    budget.passed(MiB);
    assert.equal(collected, 1);
    memory = 37 * MiB; // under 22 + 16
    budget.passed(2 * MiB);
    assert.equal(collected, 1);
    memory = 39 * MiB;
    budget.passed(3 * MiB);
    assert.equal(collected, 2);
  });

  it("stays out of the way without a tight limit (none, or above 512 MiB)", () => {
    for (const memoryLimitBytes of [0, 513 * MiB, 2 ** 64]) {
      let reads = 0;
      const budget = new BufferBudget({
        memoryLimitBytes,
        collect: () => {},
        arrayBuffers: () => ++reads * 1e9,
      });
      for (let n = 0; n < 100 * MiB; n += MiB) budget.passed(n);
      assert.equal(budget.active, false);
      assert.equal(reads, 0, `limit ${memoryLimitBytes}`);
    }
    assert.equal(new BufferBudget({ memoryLimitBytes: 512 * MiB, collect: () => {} }).active, true);
  });

  it("turns V8's gc on itself when active: no --expose-gc on the command line, and no global gc appears", () => {
    assert.equal(new BufferBudget({ memoryLimitBytes: LIMITED }).active, true);
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined", "no global gc appears");
  });

  it("the dead Buffers of a stream are freed near the budget, not 64 MiB later as V8 frees them", () => {
    // A child Node streams 256 MiB through 1 MiB Buffers kept alive for a few steps (as pieces in flight across
    // stages are), with and without the budget; the most ArrayBuffer memory seen at any step is printed.
    const script = `
      const { BufferBudget } = await import(${MODULE});
      const budget = process.argv[1] === "on" ? new BufferBudget({ memoryLimitBytes: ${LIMITED} }) : undefined;
      const inFlight = [];
      let most = 0;
      for (let n = 1; n <= 256; n++) {
        inFlight.push(Buffer.alloc(1 << 20, n));
        if (inFlight.length > 4) inFlight.shift();
        budget?.passed(n << 20);
        most = Math.max(most, process.memoryUsage().arrayBuffers);
        if (n % 8 === 0) await new Promise((r) => setImmediate(r));
      }
      console.log(JSON.stringify({ most, collections: budget?.collections ?? 0 }));`;
    const run = (mode: string) =>
      JSON.parse(
        execFileSync(
          process.execPath,
          ["--max-semi-space-size=1", "--input-type=module", "-e", script, mode],
          { encoding: "utf8" },
        ),
      ) as { most: number; collections: number };
    const on = run("on");
    const off = run("off");
    process.stdout.write(
      `# most ArrayBuffer MiB: ${(off.most / MiB).toFixed(1)} without, ${(on.most / MiB).toFixed(1)} with (${on.collections} GCs)\n`,
    );
    assert.ok(on.collections > 0);
    // Budget or headroom past what a GC left (read at once, while V8 may still be freeing: up to ~10 MiB high),
    // plus one check's worth of stream.
    assert.ok(on.most <= 24 * MiB + 16 * MiB + 8 * MiB, `with the budget: ${on.most} bytes`);
    assert.ok(off.most > on.most, `without: ${off.most}, with: ${on.most}`);
  });

  it("is active in a process whose cgroup limits it to 128 MiB, as a pod's memory limit does", {
    skip: memoryCgroupUnavailable(),
  }, async () => {
    const script = `
      const { BufferBudget } = await import(${MODULE});
      console.log(JSON.stringify({ limit: process.constrainedMemory(), active: new BufferBudget().active }));`;
    const args = ["--input-type=module", "-e", script];
    const limited = await runInMemoryCgroup(LIMITED, process.execPath, args, { name: "buffer-budget" });
    assert.equal(limited.code, 0, limited.stderr);
    assert.deepEqual(JSON.parse(limited.stdout), { limit: LIMITED, active: true });
  });
});
