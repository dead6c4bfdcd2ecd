import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type LogRecord, parseSegment, SegmentBuilder } from "../../src/point-in-time/segment-format.ts";
import { MessageWriter } from "../../src/protobuf/wire.ts";
import { decodeEvent, EVENT_DELETE, EVENT_PUT } from "../../src/source/etcd-watch.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";

/** mvccpb.Event{type=1, kv=2 KeyValue{key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6}}. */
function event(
  type: number,
  key: string,
  rev: number,
  value: Uint8Array = Buffer.alloc(0),
  lease = 0n,
): Buffer {
  const kv = new MessageWriter()
    .bytes(1, key)
    .varint(2, rev)
    .varint(3, rev)
    .varint(4, 1)
    .bytes(5, value)
    .varint(6, lease);
  return new MessageWriter().varint(1, type).message(2, kv.finish()).finish();
}

describe("segment payload", () => {
  test("events decode to what etcd sent: type, key, revisions, version, value, lease (int64)", () => {
    const big = 0x7fff_ffff_ffff_fff0n;
    const put = decodeEvent(event(EVENT_PUT, "/a", 12, Buffer.from("v"), big));
    assert.equal(put.type, EVENT_PUT);
    assert.equal(put.key.toString(), "/a");
    assert.equal(put.revision, 12);
    assert.equal(put.value.toString(), "v");
    assert.equal(put.lease, big);
    const del = decodeEvent(event(EVENT_DELETE, "/a", 13));
    assert.equal(del.type, EVENT_DELETE);
    assert.equal(del.revision, 13);
    assert.throws(() => decodeEvent(new MessageWriter().varint(1, 0).finish()), /no mod revision/);
  });

  test("records round-trip in order, with the builder's counts (seeded)", () => {
    const seed = testSeed(7);
    const rng = new SeededRandom(seed);
    const b = new SegmentBuilder();
    const written: LogRecord[] = [];
    let rev = 100;
    for (let i = 0; i < 500; i++) {
      let r: LogRecord;
      if (rng.next() < 0.1) {
        r = {
          kind: "lease",
          id: BigInt(rng.int(1, 2 ** 30)) << 20n,
          ttl: rng.int(0, 3600),
          atRevision: rev,
          revoked: rng.next() < 0.3,
        };
      } else {
        rev++;
        const events = Array.from({ length: rng.int(1, 4) }, (_, j) =>
          event(
            rng.next() < 0.2 ? EVENT_DELETE : EVENT_PUT,
            `/k/${i}/${j}`,
            rev,
            rng.bytes(rng.int(0, 3000)),
          ),
        );
        r = { kind: "revision", revision: rev, unixMs: 1_700_000_000_000 + i, events };
      }
      written.push(r);
      b.add(r);
    }
    const { payload, sha256 } = b.finish();
    assert.match(sha256, /^[0-9a-f]{64}$/);
    const read = parseSegment(payload);
    assert.deepEqual(read, written, `seed ${seed}`);
    const revisions = written.filter((r) => r.kind === "revision");
    assert.equal(b.revisions, revisions.length);
    assert.equal(b.firstRevision, 101);
    assert.equal(b.lastRevision, rev);
    assert.equal(
      b.events,
      revisions.reduce((n, r) => n + (r.kind === "revision" ? r.events.length : 0), 0),
    );
    assert.equal(b.leaseRecords, written.length - revisions.length);
  });

  test("a truncated payload is refused, at every cut inside the last record", () => {
    const b = new SegmentBuilder();
    b.add({
      kind: "revision",
      revision: 5,
      unixMs: 1,
      events: [event(EVENT_PUT, "/x", 5, Buffer.alloc(300, 1))],
    });
    const { payload } = b.finish();
    for (let cut = 1; cut < payload.length; cut++) {
      assert.throws(() => parseSegment(payload.subarray(0, cut)), /malformed|truncated/, `cut at ${cut}`);
    }
    assert.deepEqual(parseSegment(Buffer.alloc(0)), []);
  });
});
