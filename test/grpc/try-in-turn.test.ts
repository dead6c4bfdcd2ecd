import assert from "node:assert/strict";
import { test } from "node:test";
import { tryInTurn } from "../../src/grpc/try-in-turn.ts";

const options = {
  describe: (c: string, err: unknown) => `${c}: ${(err as Error).message}`,
  allFailed: (failures: string[]) => new Error(`none worked (${failures.join("; ")})`),
};

test("returns the first candidate that works, after collecting the failures before it", async () => {
  const tried: string[] = [];
  const out = await tryInTurn(
    ["a", "b", "c"],
    async (c) => {
      tried.push(c);
      if (c === "a") throw new Error("refused");
      return `${c} ok`;
    },
    options,
  );
  assert.equal(out, "b ok");
  assert.deepEqual(tried, ["a", "b"]);
});

test("all failing: one error naming each candidate's reason, in order", async () => {
  await assert.rejects(
    tryInTurn(["a", "b"], async (c) => Promise.reject(new Error(`down ${c}`)), options),
    { message: "none worked (a: down a; b: down b)" },
  );
});

test("a fatal failure is thrown at once; an aborted signal stops before the next candidate", async () => {
  const tried: string[] = [];
  const fatal = new Error("bad certificate");
  await assert.rejects(
    tryInTurn(
      ["a", "b"],
      async (c) => {
        tried.push(c);
        throw fatal;
      },
      { ...options, isFatal: (err) => err === fatal },
    ),
    fatal,
  );
  assert.deepEqual(tried, ["a"]);
  const controller = new AbortController();
  await assert.rejects(
    tryInTurn(
      ["a", "b"],
      async () => {
        controller.abort(new Error("stopped"));
        throw new Error("refused");
      },
      { ...options, signal: controller.signal },
    ),
    { message: "refused" },
  );
  await assert.rejects(
    tryInTurn(["a"], async () => "x", { ...options, signal: controller.signal }),
    {
      message: "stopped",
    },
  );
});

test("no candidates: the all-failed error with no reasons", async () => {
  await assert.rejects(
    tryInTurn([], async () => 1, options),
    { message: "none worked ()" },
  );
});
