/**
 * readSmallObject: a body cut off mid-response (Node's `aborted`, ECONNRESET) is read again from the request, at
 * most SMALL_OBJECT_READ_ATTEMPTS times in all; other errors are thrown at once. A CI run saw `list`'s catalog read
 * of a revision log's head fail this way while the log rewrote it.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { readSmallObject, SMALL_OBJECT_READ_ATTEMPTS } from "../../src/store/small-object.ts";
import type { Store } from "../../src/store/store.ts";

/** A body that sends half of `content`, then fails with `err`. */
function cutOff(content: string, err: Error): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(content.slice(0, content.length >> 1));
      setImmediate(() => this.destroy(err));
    },
  });
}

function aborted(): Error {
  return Object.assign(new Error("aborted"), { code: "ECONNRESET" });
}

/** A store whose first `failures` gets return bodies that `fail` cuts off; later ones the whole content. */
function storeFailing(failures: number, fail: () => Error): { store: Store; gets: () => number } {
  let gets = 0;
  const content = '{"kind":"head","revision":42}';
  const store = {
    async get() {
      gets++;
      return gets <= failures ? cutOff(content, fail()) : Readable.from([Buffer.from(content)]);
    },
  } as unknown as Store;
  return { store, gets: () => gets };
}

describe("readSmallObject", () => {
  it("reads a body cut off mid-response again, and returns the whole object", async () => {
    const { store, gets } = storeFailing(SMALL_OBJECT_READ_ATTEMPTS - 1, aborted);
    assert.equal(await readSmallObject(store, "k"), '{"kind":"head","revision":42}');
    assert.equal(gets(), SMALL_OBJECT_READ_ATTEMPTS);
  });

  it("gives up after its attempts with the connection's error", async () => {
    const { store, gets } = storeFailing(99, aborted);
    await assert.rejects(readSmallObject(store, "k"), { message: "aborted", code: "ECONNRESET" });
    assert.equal(gets(), SMALL_OBJECT_READ_ATTEMPTS);
  });

  it("throws any other error at once", async () => {
    const { store, gets } = storeFailing(99, () => new Error("disk on fire"));
    await assert.rejects(readSmallObject(store, "k"), /disk on fire/);
    assert.equal(gets(), 1);
  });
});
