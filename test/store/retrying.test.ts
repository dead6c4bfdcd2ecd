import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { backoffDelay, type RetryPolicy, withRetry } from "../../src/store/retrying.ts";

const fast: RetryPolicy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 };

describe("backoffDelay", () => {
  test("full jitter under a ceiling that doubles and is capped", () => {
    const policy: RetryPolicy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(
      backoffDelay(1, policy, () => 0.999999),
      99,
    );
    assert.equal(
      backoffDelay(3, policy, () => 0.999999),
      399,
    );
    assert.equal(
      backoffDelay(8, policy, () => 0.999999),
      999,
    );
    assert.equal(
      backoffDelay(3, policy, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(2, policy, () => 0.5),
      100,
    );
  });
});

describe("withRetry", () => {
  test("retries transient failures until success", async () => {
    let calls = 0;
    const retries: number[] = [];
    const value = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new Error("transient");
        return "ok";
      },
      { policy: fast, isTransient: () => true, onRetry: (_e, retry) => retries.push(retry) },
    );
    assert.equal(value, "ok");
    assert.equal(calls, 3);
    assert.deepEqual(retries, [1, 2]);
  });

  test("a permanent failure is thrown at once, unchanged", async () => {
    let calls = 0;
    const permanent = new Error("403");
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw permanent;
        },
        { policy: fast, isTransient: () => false },
      ),
      (err) => err === permanent,
    );
    assert.equal(calls, 1);
  });

  test("gives up after maxAttempts with the last error", async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(
        async () => {
          calls++;
          throw new Error(`failure ${calls}`);
        },
        { policy: fast, isTransient: () => true },
      ),
      /failure 4/,
    );
    assert.equal(calls, 4);
  });

  test("an abort stops the wait and the retries", async () => {
    const controller = new AbortController();
    let calls = 0;
    const slow: RetryPolicy = { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 };
    const run = withRetry(
      async () => {
        calls++;
        throw new Error("transient");
      },
      { policy: slow, isTransient: () => true, signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(run, /transient/);
    assert.equal(calls, 1);
  });
});
