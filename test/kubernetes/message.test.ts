import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatDuration, UNKNOWN_FIELDS } from "../../src/kubernetes/message.ts";
import { cleanObject, decodeObject, RAW_BODY } from "../../src/kubernetes/object.ts";
import { toJson, toYaml } from "../../src/kubernetes/render.ts";

// A protobuf writer of the test's own, independent of the decoder.
function varint(n: bigint | number): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const len = (field: number, payload: Buffer | string) => {
  const b = typeof payload === "string" ? Buffer.from(payload) : payload;
  return Buffer.concat([varint(field * 8 + 2), varint(b.length), b]);
};
const num = (field: number, value: bigint | number) => Buffer.concat([varint(field * 8), varint(value)]);
const msg = (field: number, ...parts: Buffer[]) => len(field, Buffer.concat(parts));
const envelope = (apiVersion: string, kind: string, ...fields: Buffer[]) =>
  Buffer.concat([
    Buffer.from("k8s\0", "latin1"),
    msg(1, len(1, apiVersion), len(2, kind)),
    msg(2, ...fields),
  ]);

describe("protobuf objects by the generated schema", () => {
  test("a Deployment: spec and status whole, Go zero values where fields are absent, IntOrString and Time", () => {
    const value = envelope(
      "apps/v1",
      "Deployment",
      msg(1, len(1, "web"), len(3, "prod"), msg(8, num(1, 1_700_000_000))),
      msg(
        2,
        num(1, 3), // replicas (a pointer: kept even when 0)
        msg(2, msg(1, len(1, "app"), len(2, "web"))), // selector.matchLabels
        msg(
          4,
          len(1, "RollingUpdate"),
          msg(2, msg(1, num(1, 0), num(2, 1)), msg(2, num(1, 1), len(3, "25%"))),
        ),
      ),
      msg(3, num(1, 7), num(2, 3)),
    );
    const { object, complete, unknownFields } = decodeObject(value);
    assert.equal(complete, true);
    assert.equal(unknownFields, 0);
    const spec = object.spec as Record<string, unknown>;
    assert.equal(spec.replicas, 3);
    assert.deepEqual(spec.selector, { matchLabels: { app: "web" } });
    assert.deepEqual(spec.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 1, maxSurge: "25%" },
    });
    // template is a struct (never omitted); its metadata's creationTimestamp is omitzero.
    assert.deepEqual(spec.template, { metadata: {}, spec: { containers: null } });
    assert.deepEqual(object.status, { observedGeneration: 7, replicas: 3 });
    assert.equal(object.metadata?.creationTimestamp, "2023-11-14T22:13:20Z");
  });

  test("a zero Time or MicroTime under omitempty is null, never left out (a struct is never empty to encoding/json)", () => {
    // core/v1 Event: involvedObject 2, firstTimestamp 6 and lastTimestamp 7 (Time), eventTime 10 (MicroTime).
    const value = envelope(
      "v1",
      "Event",
      msg(1, len(1, "e"), len(3, "default")),
      msg(2, len(1, "Pod")),
      len(3, "Started"),
      len(6, ""), // firstTimestamp written as an empty message: Go's zero time
      msg(10, num(1, 1_700_000_000), num(2, 123_456_789)),
    );
    const { object } = decodeObject(value);
    const event = object as Record<string, unknown>;
    assert.equal(event.firstTimestamp, null);
    assert.ok("firstTimestamp" in event);
    assert.equal(event.lastTimestamp, null); // absent from the bytes: the zero struct
    assert.ok("lastTimestamp" in event);
    assert.equal(event.eventTime, "2023-11-14T22:13:20.123456Z");
    assert.equal(event.reportingComponent, ""); // no omitempty
    assert.equal("series" in event, false); // a nil pointer under omitempty is left out
  });

  test("fields of a newer Kubernetes are kept with their number and bytes, and flagged; a wrong wire type too", () => {
    const value = envelope(
      "v1",
      "ConfigMap",
      msg(1, len(1, "c")),
      len(99, "from the future"),
      num(4, 1), // immutable
      num(2, 5), // data is a map (LEN), not a varint
    );
    const d = decodeObject(value);
    assert.equal(d.complete, false);
    assert.equal(d.unknownFields, 2);
    assert.deepEqual(d.object[UNKNOWN_FIELDS], [
      { number: 99, wireType: 2, bytes: Buffer.from("from the future").toString("base64") },
      { number: 2, wireType: 0, bytes: "BQ==" },
    ]);
    assert.equal(d.object.immutable, true);
    const clean = cleanObject(d.object);
    assert.equal(UNKNOWN_FIELDS in clean.object, false);
    assert.deepEqual(clean.dropped, ["unknown fields 99, 2 of the object"]);
  });

  test("a kind without schema: what the envelope says, plus the body's bytes", () => {
    const body = Buffer.concat([msg(1, len(1, "x")), len(2, "spec")]);
    const value = Buffer.concat([
      Buffer.from("k8s\0", "latin1"),
      msg(1, len(1, "example.dev/v1"), len(2, "Frob")),
      len(2, body),
    ]);
    const d = decodeObject(value);
    assert.equal(d.complete, false);
    assert.deepEqual(d.object, {
      apiVersion: "example.dev/v1",
      kind: "Frob",
      [RAW_BODY]: body.toString("base64"),
    });
    assert.match(
      cleanObject(d.object).dropped[0]!,
      /example\.dev\/v1 Frob, a kind the schema .* does not know/,
    );
  });

  test("int64 beyond 2^53 stays exact in JSON and YAML; negative int32", () => {
    const big = 2n ** 62n + 1n;
    const value = envelope("v1", "Secret", msg(1, len(1, "s"), num(7, big), num(10, -5)));
    const d = decodeObject(value);
    assert.equal(d.object.metadata?.generation, big);
    assert.match(toJson(d.object), /"generation": 4611686018427387905,/);
    assert.match(toYaml(d.object), /generation: 4611686018427387905\n/);
    assert.equal(d.object.metadata?.deletionGracePeriodSeconds, -5);
  });

  test("durations as Go's time.Duration prints them", () => {
    const cases: [bigint, string][] = [
      [0n, "0s"],
      [1n, "1ns"],
      [1_100n, "1.1µs"],
      [1_500_000n, "1.5ms"],
      [1_000_000_000n, "1s"],
      [90_000_000_000n, "1m30s"],
      [7_200_000_000_000n, "2h0m0s"],
      [3_723_500_000_000n, "1h2m3.5s"],
      [-1_500_000_000n, "-1.5s"],
    ];
    for (const [ns, text] of cases) assert.equal(formatDuration(ns), text, String(ns));
  });
});

describe("keys from the data", () => {
  test("a ConfigMap key named __proto__ is a key like any other, through decode, clean and rendering", () => {
    const value = envelope(
      "v1",
      "ConfigMap",
      msg(1, len(1, "c")),
      msg(2, len(1, "__proto__"), len(2, "kept")),
      msg(2, len(1, "constructor"), len(2, "too")),
    );
    const { object } = decodeObject(value);
    const data = object.data as Record<string, string>;
    assert.deepEqual(Object.keys(data), ["__proto__", "constructor"]);
    assert.equal(Object.getOwnPropertyDescriptor(data, "__proto__")?.value, "kept");
    const clean = cleanObject(object).object;
    assert.match(toJson(clean), /"__proto__": "kept"/);
    assert.match(toYaml(object), /\n {2}__proto__: kept\n/);
  });
});
