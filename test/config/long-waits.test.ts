import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { sleep } from "../../src/daemon/schedule.ts";
import { MAX_TIMER_MS } from "../../src/duration.ts";
import { WorkQueue } from "../../src/operator/queue.ts";

/*
 * A monthly or yearly schedule waits longer than a Node timer holds (2^31-1 ms); Node would fire such a timer
 * after 1 ms. The daemon's wait chains timers instead, so the run starts neither early nor in a busy loop.
 */

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

test("a 40-day wait lasts 40 days, made of timers no longer than 2^31-1 ms", async () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  const delays: number[] = [];
  const real = globalThis.setTimeout;
  const spy = mock.method(globalThis, "setTimeout", (fn: () => void, ms: number) => {
    delays.push(ms);
    return real(fn, ms);
  });
  try {
    const fortyDays = 40 * 86_400_000;
    let done = false;
    void sleep(fortyDays, new AbortController().signal).then(() => {
      done = true;
    });
    await flush();
    mock.timers.tick(MAX_TIMER_MS);
    await flush();
    assert.equal(done, false, "still waiting after the first timer");
    mock.timers.tick(fortyDays - MAX_TIMER_MS - 1);
    await flush();
    assert.equal(done, false, "still waiting 1 ms before the end");
    mock.timers.tick(1);
    await flush();
    assert.equal(done, true);
    assert.ok(delays.length >= 2 && delays.every((d) => d <= MAX_TIMER_MS), `timers: ${delays.join(", ")}`);
  } finally {
    spy.mock.restore();
    mock.timers.reset();
  }
});

test("an abort ends a long wait at once", async () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  try {
    const stop = new AbortController();
    let done = false;
    void sleep(365 * 86_400_000, stop.signal).then(() => {
      done = true;
    });
    await flush();
    stop.abort();
    await flush();
    assert.equal(done, true);
  } finally {
    mock.timers.reset();
  }
});

test("operator work queue: a key due in 40 days (a monthly schedule) sleeps, no 1 ms timer loop", async () => {
  const delays: number[] = [];
  const real = globalThis.setTimeout;
  const spy = mock.method(globalThis, "setTimeout", (fn: () => void, ms: number) => {
    delays.push(ms);
    return real(fn, ms);
  });
  let reconciled = 0;
  const queue = new WorkQueue(
    async () => {
      reconciled++;
      return undefined;
    },
    { concurrency: 1 },
  );
  const stop = new AbortController();
  try {
    queue.add("ns/monthly", 40 * 86_400_000);
    const running = queue.run(stop.signal);
    await new Promise((r) => real(r, 200));
    stop.abort();
    await running;
  } finally {
    spy.mock.restore();
  }
  assert.equal(reconciled, 0);
  const queueTimers = delays.filter((d) => d !== 200);
  assert.ok(
    queueTimers.length <= 2,
    `${queueTimers.length} timers in 200 ms: ${queueTimers.slice(0, 5).join(", ")}`,
  );
  assert.ok(queueTimers.every((d) => d <= MAX_TIMER_MS));
});
