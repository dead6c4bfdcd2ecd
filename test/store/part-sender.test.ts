/**
 * sendParts (src/store/part-sender.ts) driven directly: instrumented reads and sends whose durations come from a
 * seeded generator, so parts finish out of order. Each case checks the order of the results, the bounds (in
 * flight, read ahead), and what a failure or an abort stops. The seed is in the suite's title and in every
 * failure message; rerun one with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { Hinted } from "../../src/errors.ts";
import { type PartSending, sendParts } from "../../src/store/part-sender.ts";
import { type UploadStop, uploadStop } from "../../src/store/upload-stop.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

const SEED = testSeed(20261130);

/** Waits `n` turns of the event loop (each a setImmediate), or until `signal` aborts: then rejects with its reason. */
async function turns(n: number, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < n; i++) {
    signal?.throwIfAborted();
    await tick();
  }
  signal?.throwIfAborted();
}

interface Scenario {
  parts: number;
  concurrency: number;
  /** Event-loop turns a read / a send takes, drawn per part. */
  readTurns?: [number, number];
  sendTurns?: [number, number];
  /** Turns of one part's send, overriding `sendTurns`. */
  sendTurnsOf?: (index: number) => number | undefined;
  /** Part indexes whose send fails (after its turns), and the one whose read fails. */
  sendFails?: number[];
  readFails?: number;
  /** Sends ignore the stop signal (a request that runs to its end): the loop must still wait for them. */
  deaf?: boolean;
  /** Hand the first part over as `first` rather than through readPart. */
  first?: boolean;
  limit?: number;
  /** Called at the start of each read with its index (after the bookkeeping). */
  onRead?: (index: number) => void;
  userSignal?: AbortSignal;
}

/** Everything the instrumented reads and sends saw. */
interface Trace {
  stop: UploadStop;
  reads: number;
  readsAtOnce: number;
  maxReadsAtOnce: number;
  inFlight: number;
  maxInFlight: number;
  /** The most parts held at once: in flight plus being read. */
  maxHeld: number;
  /** In flight when a read started, at most. */
  maxInFlightAtRead: number;
  sendsStarted: number[];
  finished: number[];
  /** Sends that ended by the stop signal. */
  cutOff: number[];
  /** Reads and sends started after the first failure was recorded. */
  readsAfterFailure: number;
  sendsAfterFailure: number;
  /** Sends still running when sendParts settled. */
  inFlightAtEnd: number;
  sendErrors: Map<number, Error>;
  readError: Error | undefined;
}

function partBytes(index: number): Buffer {
  return Buffer.from(`part-${index}-`.repeat(index % 3 === 0 ? 3 : 2));
}

async function run(scenario: Scenario, rng: SeededRandom): Promise<{ trace: Trace; outcome: unknown }> {
  const body = new PassThrough();
  const stop = uploadStop(body, scenario.userSignal);
  const trace: Trace = {
    stop,
    reads: 0,
    readsAtOnce: 0,
    maxReadsAtOnce: 0,
    inFlight: 0,
    maxInFlight: 0,
    maxHeld: 0,
    maxInFlightAtRead: 0,
    sendsStarted: [],
    finished: [],
    cutOff: [],
    readsAfterFailure: 0,
    sendsAfterFailure: 0,
    inFlightAtEnd: -1,
    sendErrors: new Map(),
    readError: undefined,
  };
  const [rlo, rhi] = scenario.readTurns ?? [0, 3];
  const [slo, shi] = scenario.sendTurns ?? [0, 12];
  const held = () => trace.inFlight + trace.readsAtOnce;
  let nextIndex = scenario.first ? 1 : 0;
  const sending: PartSending<string> = {
    ...(scenario.first && scenario.parts > 0 ? { first: partBytes(0) } : {}),
    readPart: async () => {
      const index = nextIndex++;
      if (stop.failed()) trace.readsAfterFailure++;
      trace.reads++;
      trace.readsAtOnce++;
      trace.maxReadsAtOnce = Math.max(trace.maxReadsAtOnce, trace.readsAtOnce);
      trace.maxInFlightAtRead = Math.max(trace.maxInFlightAtRead, trace.inFlight);
      trace.maxHeld = Math.max(trace.maxHeld, held());
      scenario.onRead?.(index);
      try {
        await turns(rng.int(rlo, rhi));
        if (index === scenario.readFails) {
          trace.readError = new Error(`read ${index} failed`);
          throw trace.readError;
        }
        return index < scenario.parts ? partBytes(index) : undefined;
      } finally {
        trace.readsAtOnce--;
      }
    },
    sendPart: async (part, index) => {
      if (stop.failed()) trace.sendsAfterFailure++;
      assert.deepEqual(part, partBytes(index), `part ${index} arrived as read`);
      trace.sendsStarted.push(index);
      trace.inFlight++;
      trace.maxInFlight = Math.max(trace.maxInFlight, trace.inFlight);
      trace.maxHeld = Math.max(trace.maxHeld, held());
      try {
        try {
          const n = scenario.sendTurnsOf?.(index) ?? rng.int(slo, shi);
          await turns(n, scenario.deaf ? undefined : stop.stop.signal);
        } catch (err) {
          trace.cutOff.push(index);
          throw err;
        }
        if (scenario.sendFails?.includes(index)) {
          const err = new Error(`send ${index} failed`);
          trace.sendErrors.set(index, err);
          throw err;
        }
        trace.finished.push(index);
        return `etag-${index}`;
      } finally {
        trace.inFlight--;
      }
    },
    concurrency: scenario.concurrency,
    ...(scenario.limit !== undefined
      ? {
          limit: {
            parts: scenario.limit,
            name: "parts",
            partSize: 5 * 1024 * 1024,
            hint: "raise --part-size",
          },
        }
      : {}),
    stop,
  };
  let outcome: unknown;
  try {
    outcome = await sendParts(sending);
  } catch (err) {
    outcome = err;
  }
  trace.inFlightAtEnd = trace.inFlight;
  stop.dispose();
  return { trace, outcome };
}

/** Runs `check` over `rounds` seeded rounds, naming the round's seed in any failure. */
async function seeded(rounds: number, check: (rng: SeededRandom) => Promise<void>, salt = 0): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    const seed = (SEED * 1009 + salt * 100_003 + round) >>> 0;
    try {
      await check(new SeededRandom(seed));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(
        `round seed ${seed} (suite seed ${SEED}; rerun with ETCD_BACKUP_TEST_SEED=${SEED}): ${message}`,
        {
          cause: err,
        },
      );
    }
  }
}

function expectedSize(parts: number): number {
  let size = 0;
  for (let i = 0; i < parts; i++) size += partBytes(i).length;
  return size;
}

describe(`sendParts (seed ${SEED})`, () => {
  test("results come back in part order although parts finish out of order", async () => {
    let outOfOrder = 0;
    await seeded(60, async (rng) => {
      const parts = rng.int(1, 40);
      const concurrency = rng.int(1, 8);
      const { trace, outcome } = await run({ parts, concurrency, first: rng.next() < 0.5 }, rng);
      assert.deepEqual(outcome, {
        results: Array.from({ length: parts }, (_, i) => `etag-${i}`),
        size: expectedSize(parts),
      });
      assert.deepEqual(trace.sendsStarted, [...Array(parts).keys()], "parts are sent in order");
      if (trace.finished.some((index, i) => index !== i)) outOfOrder++;
      assert.equal(trace.stop.failed(), undefined);
    });
    // The test means something only if completions really were shuffled.
    assert.ok(outOfOrder >= 20, `only ${outOfOrder} of 60 rounds finished out of order`);
  });

  test("at most `concurrency` in flight, one read at a time, and reads only while a slot is free", async () => {
    await seeded(
      40,
      async (rng) => {
        const concurrency = rng.int(1, 6);
        const parts = concurrency * rng.int(2, 5);
        // Slow sends and quick reads: the loop is always at its bound, so the bound is what is measured.
        const { trace, outcome } = await run(
          { parts, concurrency, readTurns: [0, 1], sendTurns: [3, 15], first: rng.next() < 0.5 },
          rng,
        );
        assert.ok(!(outcome instanceof Error), `no failure expected: ${outcome}`);
        assert.equal(trace.maxInFlight, concurrency, "in flight reaches the bound and never passes it");
        assert.equal(trace.maxReadsAtOnce, 1, "one read at a time");
        assert.ok(
          trace.maxInFlightAtRead <= concurrency - 1,
          `a read started with ${trace.maxInFlightAtRead} in flight (concurrency ${concurrency})`,
        );
        assert.ok(
          trace.maxHeld <= concurrency,
          `${trace.maxHeld} parts held at once (concurrency ${concurrency})`,
        );
      },
      1,
    );
  });

  test("the first failed send stops reading and sending, waits for those in flight, then rejects with it", async () => {
    await seeded(
      40,
      async (rng) => {
        const concurrency = rng.int(2, 6);
        const parts = rng.int(concurrency + 2, 30);
        const failing = rng.int(0, parts - 3);
        // A second part fails too, later by index: whichever fails first in time is the one reported.
        const second = rng.int(failing + 1, parts - 1);
        const deaf = rng.next() < 0.5;
        const { trace, outcome } = await run({ parts, concurrency, sendFails: [failing, second], deaf }, rng);
        const failure = trace.stop.failed();
        assert.ok(failure, "the failure is recorded");
        assert.equal(failure.fromService, true);
        assert.equal(outcome, failure.err, "rejects with the first failure");
        assert.ok(
          outcome === trace.sendErrors.get(failing) || outcome === trace.sendErrors.get(second),
          `rejected with ${outcome}`,
        );
        assert.equal(trace.inFlightAtEnd, 0, "every send had settled before sendParts rejected");
        assert.equal(trace.readsAfterFailure, 0, "no read started after the failure");
        assert.equal(trace.sendsAfterFailure, 0, "no send started after the failure");
        if (!deaf) {
          // Requests that heed the stop signal were cut off rather than run to their end.
          for (const index of trace.cutOff) assert.ok(!trace.finished.includes(index));
        }
      },
      2,
    );
  });

  test("a failure while waiting for a free slot is seen before the next read", async () => {
    // Concurrency 2: part 0 is slow and deaf to the stop, part 1 fails at once. Part 2 must not be read, and the
    // rejection comes only once part 0 has run to its end.
    const { trace, outcome } = await run(
      { parts: 10, concurrency: 2, sendFails: [1], deaf: true, sendTurnsOf: (i) => (i === 0 ? 40 : 0) },
      new SeededRandom(SEED),
    );
    assert.equal(outcome, trace.sendErrors.get(1));
    assert.equal(trace.reads, 2, "parts 0 and 1 read, nothing after");
    assert.deepEqual(trace.finished, [0], "part 0 ran to its end before the rejection");
    assert.equal(trace.inFlightAtEnd, 0);
  });

  test("an abort mid-way stops with its reason, after the parts in flight have settled", async () => {
    await seeded(
      30,
      async (rng) => {
        const concurrency = rng.int(1, 5);
        const parts = 30;
        const abortAt = rng.int(1, 20);
        const user = new AbortController();
        const reason = new Error("operator asked to stop");
        const deaf = rng.next() < 0.5;
        const { trace, outcome } = await run(
          {
            parts,
            concurrency,
            deaf,
            userSignal: user.signal,
            onRead: (index) => {
              if (index === abortAt) queueMicrotask(() => user.abort(reason));
            },
          },
          rng,
        );
        assert.equal(outcome, reason, "rejects with the abort's reason");
        assert.deepEqual(trace.stop.failed(), { err: reason, fromService: false });
        assert.equal(trace.inFlightAtEnd, 0, "no send still running");
        assert.equal(trace.readsAfterFailure, 0, "nothing read after the abort");
        assert.equal(trace.sendsAfterFailure, 0, "nothing sent after the abort");
        assert.ok(!trace.sendsStarted.includes(abortAt), "the part being read at the abort is not sent");
        assert.ok(trace.sendsStarted.length <= abortAt);
      },
      3,
    );
  });

  test("a signal aborted before the start sends nothing", async () => {
    const user = new AbortController();
    user.abort(new Error("too late"));
    for (const first of [false, true]) {
      const { trace, outcome } = await run(
        { parts: 5, concurrency: 3, userSignal: user.signal, first },
        new SeededRandom(SEED),
      );
      assert.equal(outcome, user.signal.reason);
      assert.deepEqual(trace.sendsStarted, []);
      assert.equal(trace.reads, 0);
    }
  });

  test("zero parts: nothing sent, no results, size 0", async () => {
    for (const concurrency of [1, 4]) {
      const { trace, outcome } = await run({ parts: 0, concurrency }, new SeededRandom(SEED));
      assert.deepEqual(outcome, { results: [], size: 0 });
      assert.equal(trace.reads, 1, "one read finds the end");
      assert.deepEqual(trace.sendsStarted, []);
    }
    // Only the part handed over as `first`.
    const { trace, outcome } = await run({ parts: 1, concurrency: 2, first: true }, new SeededRandom(SEED));
    assert.deepEqual(outcome, { results: ["etag-0"], size: partBytes(0).length });
    assert.equal(trace.reads, 1);
  });

  test("a read that fails stops the upload as a read failure, after the parts in flight", async () => {
    await seeded(
      30,
      async (rng) => {
        const concurrency = rng.int(1, 5);
        const readFails = rng.int(0, 15);
        const { trace, outcome } = await run(
          { parts: 20, concurrency, readFails, deaf: rng.next() < 0.5 },
          rng,
        );
        assert.ok(trace.readError);
        assert.equal(outcome, trace.readError);
        assert.deepEqual(trace.stop.failed(), { err: trace.readError, fromService: false });
        assert.equal(trace.inFlightAtEnd, 0);
        assert.equal(trace.readsAfterFailure, 0);
        assert.deepEqual(
          trace.sendsStarted,
          [...Array(readFails).keys()],
          "parts before the failed read were sent",
        );
      },
      4,
    );
  });

  test("a part past the limit is not sent and stops the upload as a read failure", async () => {
    const { trace, outcome } = await run({ parts: 12, concurrency: 3, limit: 5 }, new SeededRandom(SEED));
    assert.ok(outcome instanceof Hinted);
    assert.equal(outcome.message, "the object needs more than 5 parts of 5 MiB");
    assert.equal(outcome.hint, "raise --part-size");
    assert.equal(trace.stop.failed()?.fromService, false);
    assert.deepEqual(trace.sendsStarted, [0, 1, 2, 3, 4]);
    assert.equal(trace.inFlightAtEnd, 0);
    // Exactly at the limit is fine.
    const exact = await run({ parts: 5, concurrency: 3, limit: 5 }, new SeededRandom(SEED));
    assert.deepEqual((exact.outcome as { results: string[] }).results, [
      "etag-0",
      "etag-1",
      "etag-2",
      "etag-3",
      "etag-4",
    ]);
  });

  test("a sendPart that throws instead of rejecting is a failed send like any other", async () => {
    const stop = uploadStop(new PassThrough(), undefined);
    const boom = new Error("bad request built");
    let reads = 0;
    await assert.rejects(
      sendParts({
        readPart: async () => (reads++ < 3 ? Buffer.from("x") : undefined),
        sendPart: (_part, index) => {
          if (index === 1) throw boom;
          return turns(2).then(() => index);
        },
        concurrency: 4,
        stop,
      }),
      (err) => err === boom,
    );
    assert.deepEqual(stop.failed(), { err: boom, fromService: true });
    stop.dispose();
  });

  test("a concurrency below 1 is refused", async () => {
    const stop = uploadStop(new PassThrough(), undefined);
    for (const concurrency of [0, -1, 1.5]) {
      await assert.rejects(
        sendParts({ readPart: async () => undefined, sendPart: async () => 0, concurrency, stop }),
        RangeError,
      );
    }
    stop.dispose();
  });
});
