import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { parseChunkSizeMiB } from "../../src/cli/gcs-options.ts";
import { parseJobSettings, settingName } from "../../src/config/schema.ts";
import { describeError, UsageError } from "../../src/errors.ts";
import { GcsStore } from "../../src/store/gcs.ts";
import { gcsCredentialsFromEnv, parseGcsCredentials } from "../../src/store/gcs-credentials.ts";
import { normaliseEndpoint, resolveGcsSettings } from "../../src/store/gcs-settings.ts";
import { openStore } from "../../src/store/open.ts";

/**
 * The GCS store's parts that need no emulator: settings, credentials checks, opening, configuration, and how
 * refusals (401, 403) read, answered by a loopback stand-in that speaks the JSON API's error format (the
 * emulator accepts any caller, and the real service cannot be reached from the tests).
 */

const MiB = 1024 * 1024;

describe("GCS settings and credentials", () => {
  test("endpoints are normalised: scheme added, trailing slash and /storage/v1 dropped; credentials refused", () => {
    assert.equal(normaliseEndpoint("127.0.0.1:4443"), "http://127.0.0.1:4443");
    assert.equal(normaliseEndpoint("https://storage.example.com/storage/v1/"), "https://storage.example.com");
    assert.throws(() => normaliseEndpoint("http://user:pw@127.0.0.1:1"), UsageError);
    assert.throws(() => normaliseEndpoint("ftp://x"), UsageError);
  });

  test("chunk sizes are multiples of 256 KiB from 256 KiB to 512 MiB", () => {
    assert.equal(resolveGcsSettings().chunkSize, 8 * MiB);
    assert.equal(resolveGcsSettings({ chunkSize: 256 * 1024 }).chunkSize, 256 * 1024);
    assert.throws(() => resolveGcsSettings({ chunkSize: 300 * 1024 }), UsageError);
    assert.throws(() => resolveGcsSettings({ chunkSize: 1024 * MiB }), UsageError);
    assert.equal(parseChunkSizeMiB("0.5"), 0.5);
    assert.throws(() => parseChunkSizeMiB("0.3"));
  });

  test("a service-account key is checked; every refusal names the source, never the content", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const good = parseGcsCredentials(
      JSON.stringify({
        type: "service_account",
        client_email: "b@p.iam.gserviceaccount.com",
        private_key: pem,
      }),
      "key.json",
    );
    assert.deepEqual(good.secrets, [pem]);
    const marker = `secret-${randomBytes(6).toString("hex")}`;
    for (const [text, reason] of [
      [`{${marker}`, /not JSON/],
      [`["${marker}"]`, /not a JSON object/],
      [JSON.stringify({ private_key: marker }), /no type field/],
      [
        JSON.stringify({ type: "service_account", client_email: "x", private_key: marker }),
        /not a PEM private key/,
      ],
      [
        JSON.stringify({ type: "authorized_user", client_id: "x", client_secret: marker }),
        /without refresh_token/,
      ],
    ] as const) {
      assert.throws(
        () => parseGcsCredentials(text, "Secret ns/gcs key.json"),
        (err: unknown) => {
          assert.ok(err instanceof UsageError);
          const line = describeError(err);
          assert.match(line, /^cannot use the Google credentials in Secret ns\/gcs key\.json: /);
          assert.match(line, reason);
          assert.ok(!line.includes(marker), line);
          return true;
        },
      );
    }
  });

  test("GOOGLE_APPLICATION_CREDENTIALS: unset or empty is none; a missing file is one line", () => {
    assert.equal(gcsCredentialsFromEnv({}), undefined);
    assert.equal(gcsCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: "" }), undefined);
    assert.throws(
      () => gcsCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: "/nonexistent/key.json" }),
      /cannot read the Google credentials file \/nonexistent\/key\.json \(GOOGLE_APPLICATION_CREDENTIALS\) \(ENOENT\)/,
    );
  });

  test("openStore: gs://bucket/prefix opens a GCS store; bad names are usage errors", () => {
    const store = openStore("gs://backups/prod/etcd/", undefined, {
      gcs: { settings: { endpoint: "127.0.0.1:4443", chunkSize: MiB }, env: {} },
    });
    assert.ok(store instanceof GcsStore);
    assert.equal(store.location, "gs://backups/prod/etcd");
    assert.equal(store.settings.endpoint, "http://127.0.0.1:4443");
    assert.equal(store.settings.chunkSize, MiB);
    assert.equal((openStore("gs://backups", undefined, { gcs: { env: {} } }) as GcsStore).prefix, "");
    assert.throws(() => openStore("gs://", undefined, { gcs: { env: {} } }), UsageError);
    assert.throws(() => openStore("gs://b/a//c", undefined, { gcs: { env: {} } }), UsageError);
  });

  test("the one configuration path: gcs settings by flag name, chunk size in MiB", () => {
    const config = parseJobSettings(
      {
        to: "gs://backups/prod",
        encrypt: false,
        gcs: { endpoint: "http://127.0.0.1:4443", project: "p1", chunkSizeMiB: "0.5" },
      },
      {},
    );
    assert.deepEqual(config.gcs, { endpoint: "http://127.0.0.1:4443", project: "p1", chunkSize: MiB / 2 });
    assert.equal(settingName(["gcs", "chunkSizeMiB"]), "--gcs-chunk-size");
    assert.equal(settingName(["gcs", "endpoint"]), "--gcs-endpoint");
    assert.throws(
      () => parseJobSettings({ to: "gs://b", encrypt: false, gcs: { chunkSizeMiB: "0.3" } }, {}),
      /--gcs-chunk-size: must be a multiple of 0\.25 MiB/,
    );
  });
});

describe("GCS refusals, answered by a loopback stand-in of the JSON API's errors", () => {
  let server: ReturnType<typeof createServer>;
  let endpoint: string;
  let answer: (req: IncomingMessage, res: ServerResponse) => void;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), "gcs-local-"));
    server = createServer((req, res) => answer(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(work, { recursive: true, force: true });
  });

  const googleError =
    (status: number, message: string, reason: string) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ error: { code: status, message, errors: [{ message, reason, domain: "global" }] } }),
      );
    };

  test("401 is one line saying the credentials were refused", async () => {
    answer = googleError(401, "Invalid Credentials", "authError");
    const store = new GcsStore({ bucket: "backups", settings: { endpoint, maxAttempts: 1 } });
    for (const op of [() => store.stat("k"), () => store.put("k", Readable.from([Buffer.from("x")]))]) {
      const line = describeError(
        await op().then(
          () => assert.fail("succeeded"),
          (e: unknown) => e,
        ),
      );
      assert.match(line, /Google Cloud Storage refused the credentials \(401: Invalid Credentials\)/);
      assert.match(line, /GOOGLE_APPLICATION_CREDENTIALS/);
      assert.doesNotMatch(line, /\n/);
    }
  });

  test("403 names the missing permission and the roles to grant", async () => {
    const message =
      "backup@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).";
    answer = googleError(403, message, "forbidden");
    const store = new GcsStore({ bucket: "backups", prefix: "p", settings: { endpoint, maxAttempts: 1 } });
    const line = describeError(
      await store.put("k", Readable.from([Buffer.from("x")])).then(
        () => assert.fail("succeeded"),
        (e: unknown) => e,
      ),
    );
    assert.match(
      line,
      /^upload gs:\/\/backups\/p\/k: access to gs:\/\/backups denied \(403: .*storage\.objects\.create/,
    );
    assert.match(line, /roles\/storage\.objectCreator/);
  });

  test("5xx is retried: the request that failed is sent again", async () => {
    let calls = 0;
    answer = (req, res) => {
      calls++;
      if (calls === 1) return googleError(503, "Backend Error", "backendError")(req, res);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ name: "k", size: "3", updated: "2026-01-02T03:04:05.000Z" }));
    };
    const store = new GcsStore({
      bucket: "backups",
      settings: { endpoint, maxAttempts: 3, retryBaseDelayMs: 1 },
    });
    const info = await store.stat("k");
    assert.equal(info?.size, 3);
    assert.equal(calls, 2);
  });

  test("a key file with a usable key is sent to the auth library, which signs with it (no content in errors)", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const file = join(work, "key.json");
    writeFileSync(
      file,
      JSON.stringify({
        type: "service_account",
        client_email: "b@p.iam.gserviceaccount.com",
        private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      }),
    );
    const creds = gcsCredentialsFromEnv({ GOOGLE_APPLICATION_CREDENTIALS: file });
    assert.equal(creds?.json.client_email, "b@p.iam.gserviceaccount.com");
    assert.match(creds?.label ?? "", /key\.json \(GOOGLE_APPLICATION_CREDENTIALS\)/);
  });
});

describe("GCS secrets in text", () => {
  test("upload session ids and Google OAuth tokens are redacted wherever they show up", async () => {
    const { Redactor } = await import("../../src/observability/redact.ts");
    const r = new Redactor();
    const id = "ABPnzm5Xk2Q_secret-session-id";
    const line = r.redact(
      `PUT http://127.0.0.1:1/upload/storage/v1/b/b/o?uploadType=resumable&name=a&upload_id=${id} failed; ` +
        "Bearer-less ya29.a0AfB_byC1234567890abcdefghij and 1//0gAbCdEfGhIjKlMnOpQrStUvWxYz",
    );
    assert.ok(!line.includes(id), line);
    assert.ok(!line.includes("ya29.a0AfB"), line);
    assert.ok(!line.includes("1//0gAbCd"), line);
    assert.match(line, /upload_id=\[REDACTED\]/);
  });
});

describe("GCS and immutability: the configuration reaches the store", () => {
  test("a lock asked for with a gs:// destination (either flag name) is the GCS store's objectLock", async () => {
    const { backupJobFromConfig } = await import("../../src/config/job.ts");
    const cases: [Record<string, unknown>, unknown][] = [
      [
        { objectLock: "compliance", objectLockDays: "7" },
        { mode: "compliance", days: 7 },
      ],
      [{ s3: { objectLock: "governance", objectLockDays: "3" } }, { mode: "governance", days: 3 }],
      [{ legalHold: true }, { legalHold: true }],
      [{}, undefined],
    ];
    for (const [settings, want] of cases) {
      const config = parseJobSettings(
        { to: "gs://backups/prod", encrypt: false, fromFile: "/nonexistent", ...settings },
        {},
      );
      const job = await backupJobFromConfig(config, { env: {} });
      assert.ok(job.store instanceof GcsStore);
      assert.deepEqual(job.store.settings.objectLock, want, JSON.stringify(settings));
    }
  });

  test("the store's own check of a lock names the destination-neutral flags", () => {
    assert.throws(
      () => resolveGcsSettings({ objectLock: { mode: "compliance" } }),
      /^UsageError: --object-lock compliance needs --object-lock-days/,
    );
    assert.throws(
      () => resolveGcsSettings({ objectLock: { days: 3 } }),
      /--object-lock-days needs --object-lock/,
    );
    assert.equal(resolveGcsSettings({ objectLock: { legalHold: false } }).objectLock, undefined);
  });
});
