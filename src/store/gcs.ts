import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { Bucket, Storage } from "@google-cloud/storage";
import { Hinted, UsageError } from "../errors.ts";
import { AskedOnce } from "./asked-once.ts";
import { failedUpload } from "./failed-operation.ts";
import type { GcsCredentials } from "./gcs-credentials.ts";
import {
  explainGcsError,
  GcsHttpError,
  gcsStatus,
  isGcsNotFound,
  isPreconditionFailed,
  isTransientGcsError,
  missingBucket,
} from "./gcs-errors.ts";
import {
  type BucketPolicy,
  type BucketRetentionFields,
  bucketPolicy,
  isRetentionRefusal,
  lockFields,
  noObjectRetentionError,
  type ObjectRetentionFields,
  objectRetentionEnabled,
  retentionFields,
  retentionFromResource,
} from "./gcs-retention.ts";
import { sessionRequest } from "./gcs-session-http.ts";
import { type GcsSettings, type ResolvedGcsSettings, resolveGcsSettings } from "./gcs-settings.ts";
import { KeyPrefix } from "./key-prefix.ts";
import { settleRefusedCreate } from "./landed-create.ts";
import { requireLockable } from "./lock-check.ts";
import { type RetryPolicy, withRetry } from "./retrying.ts";
import { readParts } from "./s3-parts.ts";
import {
  AlreadyExistsError,
  type Leftover,
  NO_RETENTION,
  NotFoundError,
  type ObjectInfo,
  type PutOptions,
  type PutResult,
  type Retention,
  retentionHold,
  type Store,
} from "./store.ts";
import { uploadStop } from "./upload-stop.ts";

export interface GcsStoreOptions {
  bucket: string;
  /** Object name prefix without leading or trailing slashes; empty for the bucket's root. */
  prefix?: string;
  settings?: GcsSettings;
  /**
   * Explicit credentials (GOOGLE_APPLICATION_CREDENTIALS read and checked, or a Secret's service-account key);
   * absent: Application Default Credentials (workload identity, a VM's metadata server, gcloud's login).
   */
  credentials?: GcsCredentials;
}

/**
 * How long a listing's word that nothing holds an object stands in for reading its retention: long enough for
 * the `list` or `prune` that listed, short enough that a hold set since is read (GCS refuses a held delete anyway).
 */
const LISTED_FRESH_MS = 60_000;

/** Custom metadata key that carries `PutOptions.owner`. */
const OWNER_METADATA = "etcd-backup-owner";
const DEFAULT_ENDPOINT = "https://storage.googleapis.com";

/** A resumable upload session this store started and has not yet finished or cancelled. */
interface Session {
  key: string;
  since: Date;
  /** Our name for it in `Leftover.id`. */
  id: string;
  /** The session URI: whoever holds it can write to the upload, so it is never shown (`Leftover.id` is ours). */
  uri: string;
}

/** One object's metadata as the JSON API gives it (the fields we read). */
interface ObjectResource extends ObjectRetentionFields {
  name?: string;
  size?: string | number;
  updated?: string;
  timeCreated?: string;
  metadata?: Record<string, string | undefined> | null;
}

/**
 * A bucket and prefix in Google Cloud Storage, through `@google-cloud/storage` (credentials, listing, reading,
 * deleting, starting uploads) and the JSON API's resumable upload protocol for the bytes.
 *
 * `put` starts a resumable upload session and sends the body in `chunkSize` requests, reading the next chunk
 * while one is sent: memory is about two chunks whatever the length, and the body is read only as fast as the
 * chunks go out (backpressure). Nothing is visible until the last request finalises the object, so a failed,
 * aborted or killed put never leaves a partial object: a failed or aborted one cancels its session, a killed
 * one's session is never finalised and the service drops it after a week. GCS offers no way to list upload
 * sessions, so `leftovers` can only report the sessions this process has open (a put in flight); a killed
 * process's are invisible and need no cleaning up.
 *
 * An `ifAbsent` put starts its session with `ifGenerationMatch=0`, which GCS evaluates when the upload is
 * finalised: of concurrent creates of one name exactly one succeeds, the others get 412 (`exclusive: true`).
 * Each request is retried with backoff on 408, 429, 5xx and network errors; a chunk is resent from the offset
 * the session reports having persisted.
 *
 * Immutability (gcs-retention.ts): with `settings.objectLock`, an `immutable` put starts its session with the
 * object's `retention` (governance: `Unlocked`, compliance: `Locked`, until the write's time plus the days) and/or
 * `temporaryHold`, so the object is held from the moment it exists; `prepare` checks that the bucket has object
 * retention. `retention` reads an object's own retention, holds and its bucket's retention policy; a delete GCS
 * refuses because of them rejects with one line naming the hold, the object left whole.
 */
export class GcsStore implements Store {
  readonly bucket: string;
  /** The prefix, the store's location and every key's full name: one place for all three. */
  private readonly keys: KeyPrefix;
  get location(): string {
    return this.keys.location;
  }
  /** Without leading or trailing slashes; empty for the root. */
  get prefix(): string {
    return this.keys.prefix;
  }
  readonly settings: ResolvedGcsSettings;
  private readonly credentials: GcsCredentials | undefined;
  private readonly endpointForMessages: string;
  private readonly retryPolicy: RetryPolicy;
  private readonly sessions = new Map<string, Session>();
  /** The SDK is loaded on first use: a command that never touches GCS does not pay for importing it. */
  private loading: Promise<void> | undefined;
  private storage!: Storage;
  private gcsBucket!: Bucket;
  /**
   * Keys the last listing showed with nothing holding them (no retention, no hold, no bucket policy date), and
   * when: `retention` answers those from it for `LISTED_FRESH_MS` instead of one request per object (a plain
   * bucket's `list` and `prune` would otherwise read every backup's metadata). A put or delete of the key forgets it.
   */
  private readonly listedUnheld = new Map<string, number>();
  /**
   * The bucket's resource, read once per store: its retention policy for `retention`, its object retention for
   * `prepare`. A bucket the credentials may not read (storage.buckets.get is not in the object roles) gives no
   * resource; a missing bucket rejects.
   */
  private readonly bucketFacts = new AskedOnce(
    async (): Promise<{ resource?: BucketRetentionFields; policy?: BucketPolicy }> => {
      await this.load();
      try {
        const [resource] = await this.gcsBucket.getMetadata();
        const facts = resource as BucketRetentionFields;
        const policy = bucketPolicy(facts);
        return { resource: facts, ...(policy ? { policy } : {}) };
      } catch (err) {
        if (gcsStatus(err) === 403) return {};
        if (isGcsNotFound(err)) throw missingBucket(this.bucket);
        throw err;
      }
    },
  );

  constructor(options: GcsStoreOptions) {
    if (!options.bucket) throw new Error("no bucket given");
    this.bucket = options.bucket;
    this.keys = new KeyPrefix("gs", this.bucket, options.prefix);
    this.settings = resolveGcsSettings(options.settings);
    this.credentials = options.credentials;
    this.endpointForMessages = this.settings.endpoint ?? DEFAULT_ENDPOINT;
    this.retryPolicy = {
      maxAttempts: this.settings.maxAttempts,
      baseDelayMs: this.settings.retryBaseDelayMs,
      maxDelayMs: 10_000,
    };
  }

  private load(): Promise<void> {
    this.loading ??= this.createClient();
    return this.loading;
  }

  private async createClient(): Promise<void> {
    const { Storage, IdempotencyStrategy } = await import("@google-cloud/storage");
    const s = this.settings;
    // The SDK reads STORAGE_EMULATOR_HOST itself, over any endpoint it is given; the endpoint is decided once,
    // by our settings (where that variable is read too), so the SDK must not see it.
    const emulatorHost = process.env.STORAGE_EMULATOR_HOST;
    delete process.env.STORAGE_EMULATOR_HOST;
    try {
      this.storage = new Storage({
        ...(s.endpoint ? { apiEndpoint: s.endpoint } : {}),
        ...(s.project ? { projectId: s.project } : {}),
        ...(this.credentials ? { credentials: this.credentials.json } : {}),
        // Another host than Google's gets credentials only when they were given explicitly (a private
        // endpoint); an emulator needs none, and looking for them would ask a metadata server.
        useAuthWithCustomEndpoint: this.credentials !== undefined,
        retryOptions: {
          // (maxRetries 0 is taken as "the default", so one attempt is said with autoRetry.)
          autoRetry: s.maxAttempts > 1,
          maxRetries: Math.max(1, s.maxAttempts - 1),
          retryDelayMultiplier: 2,
          maxRetryDelay: 10,
          totalTimeout: 300,
          // Every request the store makes through the SDK is idempotent for it: reads, listings, deletes
          // (a gone object is fine) and session starts (an unused session is dropped by the service).
          idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        },
      });
    } finally {
      if (emulatorHost !== undefined) process.env.STORAGE_EMULATOR_HOST = emulatorHost;
    }
    this.gcsBucket = this.storage.bucket(this.bucket);
  }

  /** Nothing to close: the SDK's connections are pooled by Node's global agent. Here for callers of S3Store's. */
  destroy(): void {}

  /** The one-line reading of a failed request (`explain`'s cause). */
  private explainOnly(err: unknown): Error {
    return explainGcsError(err, { bucket: this.bucket, endpoint: this.endpointForMessages });
  }

  private explain(what: string, err: unknown): Error {
    return new Error(what, { cause: this.explainOnly(err) });
  }

  private retry<T>(operation: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(operation, {
      policy: this.retryPolicy,
      isTransient: isTransientGcsError,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * With a retention mode configured, checks that the bucket has object retention enabled; a bucket without it
   * is refused with one line. A hold alone needs nothing of the bucket, and without a lock nothing is asked.
   */
  async prepare(): Promise<void> {
    if (!this.settings.objectLock?.mode) return;
    await requireLockable({
      ask: async () => {
        const { resource } = await this.bucketFacts.get();
        return resource ? objectRetentionEnabled(resource) : undefined;
      },
      failed: (err) =>
        err instanceof Hinted || err instanceof UsageError
          ? err
          : this.explain(`check object retention on ${this.location}`, err),
      cannotLock: () => noObjectRetentionError(this.bucket),
      wouldNotTell: () =>
        new Hinted(
          `cannot tell whether bucket ${this.bucket} has object retention`,
          "grant these credentials storage.buckets.get on the bucket (e.g. roles/storage.legacyBucketReader); see docs/gcs.md",
        ),
    });
  }

  async retention(key: string): Promise<Retention> {
    await this.load();
    const name = this.keys.fullName(key);
    const listed = this.listedUnheld.get(key);
    if (listed !== undefined && Date.now() - listed < LISTED_FRESH_MS) return NO_RETENTION;
    let meta: ObjectResource;
    try {
      [meta] = (await this.gcsBucket.file(name).getMetadata()) as unknown as [ObjectResource];
    } catch (err) {
      if (isGcsNotFound(err)) throw new NotFoundError(key, this.location);
      throw this.explain(`read the retention of ${this.keys.where(key)}`, err);
    }
    // The policy only tells governance from compliance (the date is on the object): unreadable, it is left out.
    const policy = meta.retentionExpirationTime
      ? (await this.bucketFacts.get().catch(() => undefined))?.policy
      : undefined;
    return retentionFromResource(meta, policy);
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    await this.load();
    this.listedUnheld.delete(key);
    const name = this.keys.fullName(key);
    // One controller stops everything: the user's abort, a failed part, or the body's own error.
    const { stop, fail, failed, dispose } = uploadStop(body, options.signal);

    const chunkSize = this.settings.chunkSize;
    const free: Buffer[] = [];
    const parts = readParts(body, chunkSize, () => free.pop() ?? Buffer.allocUnsafe(chunkSize));
    const nextPart = (): Promise<IteratorResult<Buffer> | undefined> =>
      parts.next().catch((err) => {
        fail(err, false);
        return undefined;
      });
    let session: Session | undefined;
    let size = 0;
    try {
      if (failed()) throw failed()?.err;
      // The first chunk is read while the session starts.
      const first = nextPart();
      try {
        session = await this.startSession(key, name, options);
      } catch (err) {
        // Starting an upload finds no object by definition: a 404 is the bucket's. Our own refusals (a bucket
        // without object retention) are one line already.
        if (isGcsNotFound(err)) fail(missingBucket(this.bucket), false);
        else if (err instanceof UsageError || err instanceof Hinted) fail(err, false);
        else fail(err, true);
        await first;
        throw err;
      }
      if (failed()) throw failed()?.err;
      let current = await first;
      let offset = 0;
      let finished: ObjectResource | undefined;
      while (!failed() && current) {
        if (current.done) {
          // Everything sent in full chunks (or nothing at all): an empty request finalises the object.
          size = offset;
          finished = await this.sendChunk(session.uri, Buffer.alloc(0), offset, offset, stop.signal);
          break;
        }
        const chunk = current.value;
        if (chunk.length < chunkSize) {
          // The last chunk: its request finalises the object. (`size` is known before it goes, for the check
          // below of a retried finalisation that had landed.)
          size = offset + chunk.length;
          finished = await this.sendChunk(session.uri, chunk, offset, size, stop.signal);
          offset = size;
          break;
        }
        // A full chunk: send it while the next one is read.
        const following = nextPart();
        try {
          await this.sendChunk(session.uri, chunk, offset, undefined, stop.signal);
        } catch (err) {
          fail(err, true);
          await following;
          break;
        }
        offset += chunk.length;
        free.push(chunk);
        current = await following;
      }
      if (failed()) throw failed()?.err;
      if (!finished) throw new Error("the upload ended without the object");
      this.sessions.delete(session.uri);
      const stored = Number(finished.size ?? size);
      if (stored !== size) throw new Error(`GCS stored ${stored} bytes of ${size}`);
      return { size, ...(options.ifAbsent ? { exclusive: true } : {}) };
    } catch (err) {
      const cause = failed() ?? { err, fromService: true };
      if (session && this.sessions.has(session.uri)) await this.cancelSession(session);
      if (err instanceof AlreadyExistsError) throw err;
      if (options.ifAbsent && cause.fromService && isPreconditionFailed(cause.err)) {
        // A retried finalisation whose first try did land finds its own object (an empty one cannot tell).
        return await settleRefusedCreate(this, key, size > 0 ? options.owner : undefined, size);
      }
      if (cause.fromService && gcsStatus(cause.err) === 400 && /retention/i.test(describeCause(cause.err)))
        throw new Error(`upload ${this.keys.where(key)}`, { cause: noObjectRetentionError(this.bucket) });
      throw failedUpload(`upload ${this.keys.where(key)}`, cause, (what, e) => this.explain(what, e));
    } finally {
      dispose();
      await parts.return(undefined).catch(() => {});
    }
  }

  /**
   * Starts a resumable upload session (through the SDK: credentials, retries) and remembers it as this
   * process's leftover until it is finished or cancelled. `ifAbsent` sends `ifGenerationMatch=0`.
   */
  private async startSession(key: string, name: string, options: PutOptions): Promise<Session> {
    const file = this.gcsBucket.file(name);
    // Backup data on a store that locks: held from the moment the object exists (the session's object resource).
    const lock = options.immutable && !options.retention ? this.settings.objectLock : undefined;
    const held = options.retention
      ? retentionFields(options.retention, new Date())
      : lock
        ? lockFields(lock, new Date())
        : {};
    // A retention needs a bucket with object retention (checked once; the same one line as at start).
    if (held.retention && lock) await this.prepare();
    const metadata = {
      contentType: options.contentType ?? "application/octet-stream",
      ...(options.owner ? { metadata: { [OWNER_METADATA]: options.owner } } : {}),
      ...held,
    };
    const [uri] = await file.createResumableUpload({
      metadata,
      ...(options.ifAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    });
    if (!uri) throw new Error("GCS returned no upload session");
    const session = { key, since: new Date(), id: `session-${randomUUID()}`, uri };
    this.sessions.set(uri, session);
    return session;
  }

  /**
   * Sends `chunk` at `offset` of the session; `total` set makes it the last request, which finalises the object
   * and returns its metadata. Retried on transient failures: each retry first asks the session how much it has
   * persisted and resends from there (GCS may keep part of a request that failed).
   */
  private async sendChunk(
    uri: string,
    chunk: Buffer,
    offset: number,
    total: number | undefined,
    signal: AbortSignal,
  ): Promise<ObjectResource | undefined> {
    const end = offset + chunk.length;
    return this.retry(async (attempt) => {
      let from = offset;
      if (attempt > 1) {
        const status = await this.sessionStatus(uri, signal);
        if (status.finished) {
          if (total === undefined) throw new Error("the upload session was finalised before its last chunk");
          return status.finished;
        }
        from = status.persisted;
        if (from < offset || from > end)
          throw new Error(`upload session at byte ${from}, expected ${offset}`);
        if (from === end && total === undefined) return undefined;
      }
      const piece = chunk.subarray(from - offset);
      const range =
        piece.length === 0
          ? `bytes */${total ?? end}`
          : `bytes ${from}-${end - 1}/${total === undefined ? "*" : total}`;
      const res = await sessionRequest(uri, "PUT", { "Content-Range": range }, piece, signal);
      if (res.status === 308) {
        if (total !== undefined) throw new GcsHttpError(503, "the last chunk did not finalise the upload");
        const persisted = persistedBytes(headerValue(res.headers.range));
        // Part of the chunk kept: a retry resends the rest.
        if (persisted < end) throw new GcsHttpError(503, `session kept ${persisted} of ${end} bytes`);
        return undefined;
      }
      if (res.status >= 200 && res.status < 300) return JSON.parse(res.text) as ObjectResource;
      throw sessionError(res.status, res.text);
    }, signal);
  }

  /** How many bytes a session holds (`Content-Range: bytes *\/*`), or the object when it was finalised. */
  private async sessionStatus(
    uri: string,
    signal: AbortSignal,
  ): Promise<{ persisted: number; finished?: ObjectResource }> {
    const res = await sessionRequest(uri, "PUT", { "Content-Range": "bytes */*" }, undefined, signal);
    if (res.status === 308) return { persisted: persistedBytes(headerValue(res.headers.range)) };
    if (res.status >= 200 && res.status < 300)
      return { persisted: -1, finished: JSON.parse(res.text) as ObjectResource };
    throw sessionError(res.status, res.text);
  }

  /** Cancels a session (DELETE on its URI; GCS answers 499): its bytes are dropped, no object is made. */
  private async cancelSession(session: Session): Promise<void> {
    try {
      await sessionRequest(session.uri, "DELETE", {}, undefined, AbortSignal.timeout(30_000));
    } catch {
      // Best effort: a session nobody finalises never becomes an object, and GCS drops it after a week.
    }
    this.sessions.delete(session.uri);
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    await this.load();
    const name = this.keys.fullName(key);
    const { signal } = options;
    try {
      return await this.retry(
        () =>
          new Promise<Readable>((resolve, reject) => {
            if (signal?.aborted) return reject(signal.reason);
            const stream = this.gcsBucket.file(name).createReadStream();
            const onAbort = () => stream.destroy(signal?.reason);
            signal?.addEventListener("abort", onAbort, { once: true });
            stream.once("end", () => signal?.removeEventListener("abort", onAbort));
            stream.once("close", () => signal?.removeEventListener("abort", onAbort));
            // The SDK sends the request on the first read and reports a failure (a missing object) as an error on
            // the stream once it has read the answer's body: start it, and wait for the answer first.
            const onError = (err: unknown) => {
              signal?.removeEventListener("abort", onAbort);
              reject(err);
            };
            stream.once("error", onError);
            stream.once("response", (res: { statusCode?: number; status?: number }) => {
              const status = res.statusCode ?? res.status ?? 200;
              if (status >= 300) return; // the error follows
              stream.off("error", onError);
              resolve(stream);
            });
            stream.read(0);
          }),
        signal,
      );
    } catch (err) {
      if (isGcsNotFound(err)) throw new NotFoundError(key, this.location);
      throw this.explain(`download ${this.keys.where(key)}`, err);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    await this.load();
    const name = this.keys.fullName(key);
    try {
      const [meta] = await this.gcsBucket.file(name).getMetadata();
      return this.info(key, meta as ObjectResource, true);
    } catch (err) {
      if (isGcsNotFound(err)) return null;
      throw this.explain(`stat ${this.keys.where(key)}`, err);
    }
  }

  private info(key: string, meta: ObjectResource, withOwner: boolean): ObjectInfo {
    const owner = withOwner ? meta.metadata?.[OWNER_METADATA] : undefined;
    const when = meta.updated ?? meta.timeCreated;
    return {
      key,
      size: Number(meta.size ?? 0),
      lastModified: when ? new Date(when) : new Date(0),
      ...(owner ? { owner } : {}),
    };
  }

  async *list(prefix = ""): AsyncIterable<ObjectInfo> {
    await this.load();
    const root = this.keys.root;
    let pageToken: string | undefined;
    do {
      let files: import("@google-cloud/storage").File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await this.gcsBucket.getFiles({
          prefix: root + prefix,
          autoPaginate: false,
          maxResults: 1000,
          ...(pageToken ? { pageToken } : {}),
        });
      } catch (err) {
        if (isGcsNotFound(err))
          throw new Error(`list ${this.location}`, { cause: missingBucket(this.bucket) });
        throw this.explain(`list ${this.location}`, err);
      }
      const listedAt = Date.now();
      for (const file of files) {
        if (!file.name.startsWith(root) || file.name.endsWith("/")) continue;
        const key = file.name.slice(root.length);
        const meta = file.metadata as ObjectResource;
        if (!meta.retention && !meta.temporaryHold && !meta.eventBasedHold && !meta.retentionExpirationTime)
          this.listedUnheld.set(key, listedAt);
        else this.listedUnheld.delete(key);
        yield this.info(key, meta, false);
      }
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    await this.load();
    this.listedUnheld.delete(key);
    const name = this.keys.fullName(key);
    try {
      await this.gcsBucket.file(name).delete({ ignoreNotFound: true });
    } catch (err) {
      if (isGcsNotFound(err)) return;
      if (isRetentionRefusal(err)) {
        // Held: say by what, as prune shows it (the object is untouched).
        const hold = await this.retention(key).then(
          (r) => retentionHold(r, new Date()),
          () => null,
        );
        if (hold)
          throw new Error(`delete ${this.keys.where(key)}: ${hold}`, { cause: this.explainOnly(err) });
      }
      throw this.explain(`delete ${this.keys.where(key)}`, err);
    }
  }

  /**
   * The upload sessions this process has open under `prefix`: a put in flight. GCS cannot list sessions, and a
   * killed process's are never finalised (no object, nothing listed) and dropped by the service after a week.
   */
  async *leftovers(prefix = ""): AsyncIterable<Leftover> {
    for (const s of this.sessions.values()) {
      if (s.key.startsWith(prefix)) yield { key: s.key, kind: "resumable upload", since: s.since, id: s.id };
    }
  }

  async removeLeftover(leftover: Leftover): Promise<void> {
    for (const s of [...this.sessions.values()]) if (s.id === leftover.id) await this.cancelSession(s);
  }
}

/** A failed request's message, for telling its kind (never shown: it may quote a session URL). */
function describeCause(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The bytes a session holds from its `Range: bytes=0-N` header (none: nothing yet). */
function persistedBytes(range: string | null): number {
  const m = /bytes=0-(\d+)/.exec(range ?? "");
  return m ? Number(m[1]) + 1 : 0;
}

/** A session request's error answer: its status, the JSON API's message (or the body's start) and reason code. */
function sessionError(status: number, text: string): GcsHttpError {
  try {
    const json = JSON.parse(text) as { error?: { message?: string; errors?: { reason?: string }[] } };
    if (json.error?.message)
      return new GcsHttpError(status, json.error.message, json.error.errors?.[0]?.reason);
  } catch {}
  return new GcsHttpError(status, text.slice(0, 200).replace(/https?:\/\/\S*/g, "<url>"));
}

function headerValue(value: string | string[] | undefined): string | null {
  return Array.isArray(value) ? (value[0] ?? null) : (value ?? null);
}
