import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import { describeError, errorChain } from "../../src/errors.ts";
import { GcsStore } from "../../src/store/gcs.ts";
import { retentionFromResource } from "../../src/store/gcs-retention.ts";
import type { ObjectLockSettings } from "../../src/store/s3-settings.ts";
import { NotFoundError } from "../../src/store/store.ts";

/**
 * GCS object retention, holds and bucket lock in the GCS store, against a loopback STAND-IN for the Google Cloud
 * Storage JSON API: fake-gcs-server (test/peers/gcs-retention.test.ts) keeps an object's `retention` but has no
 * holds, no bucket `objectRetention` or `retentionPolicy`, and deletes held objects; the real service cannot be
 * reached from the tests. The stand-in records every request the SDK and the store send (the session's
 * initiation body is where the retention goes) and answers as the JSON API reference documents: bucket and object
 * resources with the retention fields, and 403 with reason `retentionPolicyNotMet` for a delete of a held object.
 */

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  json?: Record<string, unknown>;
}

interface StoredObject {
  resource: Record<string, unknown>;
  body: Buffer;
}

const DAY_MS = 86_400_000;

/** The stand-in: one bucket whose resource the test sets, objects in memory, every request recorded. */
async function startStandIn(bucketName: string) {
  const requests: Recorded[] = [];
  const objects = new Map<string, StoredObject>();
  const sessions = new Map<string, { name: string; metadata: Record<string, unknown>; parts: Buffer[] }>();
  const state: { bucket: Record<string, unknown>; bucketStatus?: number } = { bucket: {} };
  let nextId = 0;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, reason: string, message: string) =>
    json(res, status, { error: { code: status, message, errors: [{ domain: "global", reason, message }] } });
  const held = (o: StoredObject): string | null => {
    const r = o.resource as {
      retention?: { retainUntilTime?: string };
      temporaryHold?: boolean;
      eventBasedHold?: boolean;
      retentionExpirationTime?: string;
    };
    const until = [r.retention?.retainUntilTime, r.retentionExpirationTime]
      .filter((t): t is string => typeof t === "string")
      .map((t) => new Date(t).getTime())
      .filter((t) => t > Date.now());
    if (until.length > 0) {
      return `Object '${bucketName}/${String(o.resource.name)}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${new Date(Math.max(...until)).toISOString()}`;
    }
    if (r.temporaryHold || r.eventBasedHold) {
      return `Object '${bucketName}/${String(o.resource.name)}' is under active Temporary hold and cannot be deleted, overwritten or archived until hold is removed.`;
    }
    return null;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://stand-in");
      const body = Buffer.concat(chunks);
      const entry: Recorded = { method: req.method ?? "", path: url.pathname, query: url.searchParams };
      if (/json/.test(String(req.headers["content-type"])) && body.length > 0)
        entry.json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
      requests.push(entry);
      const base = `/storage/v1/b/${bucketName}`;
      if (req.method === "GET" && url.pathname === base) {
        if (state.bucketStatus)
          return error(
            res,
            state.bucketStatus,
            "forbidden",
            "caller does not have storage.buckets.get access",
          );
        return json(res, 200, { kind: "storage#bucket", name: bucketName, ...state.bucket });
      }
      if (req.method === "GET" && url.pathname === `${base}/o`) {
        const prefix = url.searchParams.get("prefix") ?? "";
        const items = [...objects.values()]
          .map((o) => o.resource)
          .filter((r) => String(r.name).startsWith(prefix));
        return json(res, 200, { kind: "storage#objects", items });
      }
      if (url.pathname.startsWith(`${base}/o/`)) {
        const name = decodeURIComponent(url.pathname.slice(`${base}/o/`.length));
        const o = objects.get(name);
        if (!o) return error(res, 404, "notFound", `No such object: ${bucketName}/${name}`);
        if (req.method === "GET") return json(res, 200, o.resource);
        if (req.method === "DELETE") {
          const why = held(o);
          if (why) return error(res, 403, "retentionPolicyNotMet", why);
          objects.delete(name);
          res.writeHead(204).end();
          return;
        }
      }
      if (req.method === "POST" && url.pathname === `/upload${base}/o`) {
        const name = url.searchParams.get("name") ?? String(entry.json?.name ?? "");
        const id = `standin-${++nextId}`;
        sessions.set(id, { name, metadata: entry.json ?? {}, parts: [] });
        const port = (server.address() as AddressInfo).port;
        res.writeHead(200, {
          location: `http://127.0.0.1:${port}/upload${base}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`,
        });
        res.end();
        return;
      }
      if (req.method === "PUT" && url.searchParams.get("upload_id")) {
        const s = sessions.get(url.searchParams.get("upload_id") ?? "");
        if (!s) return error(res, 404, "notFound", "no such upload");
        if (body.length > 0) s.parts.push(body);
        const total = /\/(\d+)$/.exec(String(req.headers["content-range"] ?? ""))?.[1];
        const have = s.parts.reduce((n, p) => n + p.length, 0);
        if (total === undefined || Number(total) !== have) {
          res.writeHead(308, have > 0 ? { range: `bytes=0-${have - 1}` } : {});
          res.end();
          return;
        }
        const existing = objects.get(s.name);
        const why = existing ? held(existing) : null;
        if (why) return error(res, 403, "retentionPolicyNotMet", why);
        const now = new Date().toISOString();
        const { contentType, ...rest } = s.metadata;
        const resource = {
          kind: "storage#object",
          name: s.name,
          bucket: bucketName,
          size: String(have),
          timeCreated: now,
          updated: now,
          contentType,
          ...rest,
        };
        objects.set(s.name, { resource, body: Buffer.concat(s.parts) });
        sessions.delete(url.searchParams.get("upload_id") ?? "");
        return json(res, 200, resource);
      }
      if (req.method === "DELETE" && url.searchParams.get("upload_id")) {
        sessions.delete(url.searchParams.get("upload_id") ?? "");
        res.writeHead(499).end();
        return;
      }
      error(res, 400, "invalid", `the stand-in does not answer ${req.method} ${url.pathname}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    objects,
    state,
    /** The initiation body of the upload of `name` (the object resource the session starts with). */
    initiation(name: string): Record<string, unknown> | undefined {
      return requests.findLast((r) => r.method === "POST" && r.query.get("name") === name)?.json;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("GCS retention and holds (against a stand-in for the JSON API)", () => {
  let standIn: Awaited<ReturnType<typeof startStandIn>>;
  const store = (objectLock?: ObjectLockSettings) =>
    new GcsStore({
      bucket: "locked",
      prefix: "prod",
      settings: { endpoint: standIn.endpoint, maxAttempts: 1, ...(objectLock ? { objectLock } : {}) },
    });
  const body = (text = "backup bytes") => Readable.from([Buffer.from(text)]);

  before(async () => {
    standIn = await startStandIn("locked");
  });
  after(async () => {
    await standIn?.close();
  });
  beforeEach(() => {
    standIn.requests.length = 0;
    standIn.objects.clear();
    standIn.state.bucket = { objectRetention: { mode: "Enabled" } };
    delete standIn.state.bucketStatus;
  });

  test("a locked put starts its session with the retention (compliance: Locked, governance: Unlocked) and the hold", async () => {
    const before = Date.now();
    const locked = store({ mode: "compliance", days: 30, legalHold: true });
    await locked.put("a.snap", body(), { immutable: true });
    const sent = standIn.initiation("prod/a.snap");
    const retention = sent?.retention as { mode: string; retainUntilTime: string };
    assert.equal(retention.mode, "Locked");
    const until = new Date(retention.retainUntilTime).getTime();
    assert.ok(
      until >= before + 30 * DAY_MS && until <= Date.now() + 30 * DAY_MS + 1000,
      retention.retainUntilTime,
    );
    assert.equal(sent?.temporaryHold, true);
    // Read back as prune and list see it.
    const r = await locked.retention("a.snap");
    assert.equal(r.mode, "compliance");
    assert.equal(r.legalHold, true);
    assert.equal(r.retainUntil?.getTime(), until);

    await store({ mode: "governance", days: 2 }).put("b.snap", body(), { immutable: true });
    const b = standIn.initiation("prod/b.snap");
    assert.equal((b?.retention as { mode?: string } | undefined)?.mode, "Unlocked");
    assert.equal(b?.temporaryHold, undefined);
    assert.equal((await store().retention("b.snap")).mode, "governance");
  });

  test("only backup data is locked: a put without `immutable` (a marker, a head) carries no retention or hold", async () => {
    await store({ mode: "compliance", days: 3, legalHold: true }).put("marker", body());
    const sent = standIn.initiation("prod/marker");
    assert.equal(sent?.retention, undefined);
    assert.equal(sent?.temporaryHold, undefined);
    assert.deepEqual(await store().retention("marker"), { legalHold: false });
  });

  test("--legal-hold alone: a temporary hold, no retention, and no bucket check (holds work on any bucket)", async () => {
    standIn.state.bucket = {};
    const hold = store({ legalHold: true });
    await hold.prepare();
    await hold.put("c.snap", body(), { immutable: true });
    const sent = standIn.initiation("prod/c.snap");
    assert.equal(sent?.temporaryHold, true);
    assert.equal(sent?.retention, undefined);
    assert.equal(
      standIn.requests.filter((r) => r.method === "GET" && r.path === "/storage/v1/b/locked").length,
      0,
    );
    assert.deepEqual(await hold.retention("c.snap"), { legalHold: true });
  });

  test("a put with an exact retention (rekey keeping a lock) carries that date; a date already past locks nothing", async () => {
    const until = new Date(Date.now() + 5 * DAY_MS);
    await store().put("d.snap", body(), {
      retention: { mode: "governance", retainUntil: until, legalHold: false },
    });
    assert.deepEqual(standIn.initiation("prod/d.snap")?.retention, {
      mode: "Unlocked",
      retainUntilTime: until.toISOString(),
    });
    await store().put("e.snap", body(), {
      retention: { mode: "compliance", retainUntil: new Date(Date.now() - 1000), legalHold: true },
    });
    assert.equal(standIn.initiation("prod/e.snap")?.retention, undefined);
    assert.equal(standIn.initiation("prod/e.snap")?.temporaryHold, true);
  });

  test("a bucket without object retention is one line at start (and at the first locked write), with the gcloud hint", async () => {
    standIn.state.bucket = {};
    const locked = store({ mode: "compliance", days: 1 });
    const err = await locked.prepare().then(
      () => assert.fail("prepare accepted a bucket without object retention"),
      (e: unknown) => e,
    );
    assert.equal(
      describeError(err),
      "bucket locked has no object retention (use a bucket created with: gcloud storage buckets create gs://locked --enable-per-object-retention, or ask for no object lock)",
    );
    await assert.rejects(
      store({ mode: "compliance", days: 1 }).put("f.snap", body(), { immutable: true }),
      (e: unknown) =>
        describeError(e) ===
        "upload gs://locked/prod/f.snap: bucket locked has no object retention (use a bucket created with: gcloud storage buckets create gs://locked --enable-per-object-retention, or ask for no object lock)",
    );
    assert.equal(standIn.objects.size, 0, "nothing was written");
    // Unreadable bucket (no storage.buckets.get): said so, not guessed.
    standIn.state.bucketStatus = 403;
    await assert.rejects(
      store({ mode: "governance", days: 1 }).prepare(),
      /cannot tell whether bucket locked has object retention/,
    );
    // Enabled: fine.
    delete standIn.state.bucketStatus;
    standIn.state.bucket = { objectRetention: { mode: "Enabled" } };
    await store({ mode: "governance", days: 1 }).prepare();
  });

  test("deleting a held object rejects with one line naming the hold, and leaves it whole", async () => {
    await store({ mode: "compliance", days: 7 }).put("g.snap", body("keep me"), { immutable: true });
    const err = await store()
      .delete("g.snap")
      .then(
        () => assert.fail("a held object was deleted"),
        (e: unknown) => e,
      );
    const until = new Date(
      String(
        (standIn.objects.get("prod/g.snap")?.resource.retention as { retainUntilTime?: string } | undefined)
          ?.retainUntilTime,
      ),
    );
    assert.equal(
      (err as Error).message,
      `delete gs://locked/prod/g.snap: object lock compliance until ${until.toISOString().slice(0, 10)}`,
    );
    assert.ok(!describeError(err).includes("\n"));
    assert.ok(!/roles\/storage/.test(errorChain(err).join(" ")), "a hold is not a missing permission");
    assert.equal(standIn.objects.get("prod/g.snap")?.body.toString(), "keep me");

    await store({ legalHold: true }).put("h.snap", body(), { immutable: true });
    await assert.rejects(
      store().delete("h.snap"),
      /^Error: delete gs:\/\/locked\/prod\/h\.snap: legal hold$/,
    );
    // An unheld object goes; a missing one is fine.
    await store().put("i.snap", body());
    await store().delete("i.snap");
    await store().delete("i.snap");
    assert.equal(standIn.objects.has("prod/i.snap"), false);
  });

  test("bucket lock: an object held by the bucket's retention policy (retentionExpirationTime) reads as locked", async () => {
    const expires = new Date(Date.now() + 3 * DAY_MS);
    standIn.state.bucket = { retentionPolicy: { retentionPeriod: String(3 * 86_400), isLocked: true } };
    await store().put("j.snap", body());
    const stored = standIn.objects.get("prod/j.snap")!;
    stored.resource.retentionExpirationTime = expires.toISOString();
    assert.deepEqual(await store().retention("j.snap"), {
      mode: "compliance",
      retainUntil: expires,
      legalHold: false,
    });
    // An unlocked policy can be removed by a bucket admin: governance.
    standIn.state.bucket = { retentionPolicy: { retentionPeriod: "259200", isLocked: false } };
    assert.equal((await store().retention("j.snap")).mode, "governance");
    await assert.rejects(
      store().delete("j.snap"),
      /^Error: delete gs:\/\/locked\/prod\/j\.snap: object lock governance until/,
    );
    // An event-based hold is a dateless hold too.
    stored.resource.retentionExpirationTime = new Date(Date.now() - 1000).toISOString();
    stored.resource.eventBasedHold = true;
    assert.equal((await store().retention("j.snap")).legalHold, true);
    await assert.rejects(store().retention("nothing-here"), NotFoundError);
  });

  test("after a listing, an object it showed unheld is answered without a request; a held one is read", async () => {
    const s = store({ mode: "compliance", days: 3 });
    await s.put("plain.snap", body());
    await s.put("held.snap", body(), { immutable: true });
    const fresh = store();
    const listed: string[] = [];
    for await (const o of fresh.list()) listed.push(o.key);
    assert.deepEqual(listed.sort(), ["held.snap", "plain.snap"]);
    standIn.requests.length = 0;
    assert.deepEqual(await fresh.retention("plain.snap"), { legalHold: false });
    assert.equal((await fresh.retention("held.snap")).mode, "compliance");
    const objectReads = standIn.requests.filter((r) => r.method === "GET" && r.path.includes("/o/"));
    assert.deepEqual(
      objectReads.map((r) => r.path),
      ["/storage/v1/b/locked/o/prod%2Fheld.snap"],
    );
    // A put forgets what the listing said: the next retention reads the object again.
    await fresh.put("plain.snap", body());
    standIn.requests.length = 0;
    await fresh.retention("plain.snap");
    assert.equal(standIn.requests.filter((r) => r.method === "GET" && r.path.includes("/o/")).length, 1);
  });

  test("retentionFromResource: the hold that ends last wins, compliance on a tie; garbage is ignored", () => {
    const soon = new Date(Date.now() + DAY_MS).toISOString();
    const later = new Date(Date.now() + 9 * DAY_MS).toISOString();
    assert.deepEqual(
      retentionFromResource(
        { retention: { mode: "Unlocked", retainUntilTime: later }, retentionExpirationTime: soon },
        { periodSeconds: 86_400, locked: true },
      ),
      { mode: "governance", retainUntil: new Date(later), legalHold: false },
    );
    assert.equal(
      retentionFromResource(
        { retention: { mode: "Unlocked", retainUntilTime: soon }, retentionExpirationTime: soon },
        { periodSeconds: 86_400, locked: true },
      ).mode,
      "compliance",
    );
    assert.deepEqual(
      retentionFromResource({ retention: { mode: "Weird", retainUntilTime: "x" } }, undefined),
      {
        legalHold: false,
      },
    );
  });
});
