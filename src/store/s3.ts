import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { Hinted } from "../errors.ts";
import { AskedOnce } from "./asked-once.ts";
import { failedOperation, failedUpload } from "./failed-operation.ts";
import { readFirstPart } from "./first-part.ts";
import { KeyPrefix } from "./key-prefix.ts";
import { settleRefusedCreate } from "./landed-create.ts";
import { requireLockable } from "./lock-check.ts";
import { sendParts } from "./part-sender.ts";
import { type RetryPolicy, withRetry } from "./retrying.ts";
import { explainS3Error, httpStatus, isS3NotFound, isTransientS3Error, s3ErrorCode } from "./s3-errors.ts";
import {
  bucketLockEnabled,
  contentMd5,
  deleteAllVersions,
  hiddenVersion,
  isLockRefusal,
  type LockContext,
  latestDataVersions,
  lockHeaders,
  noObjectLockError,
  retentionFromHead,
  retentionHeaders,
} from "./s3-object-lock.ts";
import { readParts } from "./s3-parts.ts";
import {
  insecureTlsWarning,
  MAX_PARTS,
  type ResolvedS3Settings,
  resolveS3Settings,
  type S3Settings,
} from "./s3-settings.ts";
import {
  AlreadyExistsError,
  type Leftover,
  LeftoversUnsupported,
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

/** Static credentials for callers that have them in hand (an operator reading a Secret, tests). */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix without leading or trailing slashes; empty for the bucket's root. */
  prefix?: string;
  settings?: S3Settings;
  /** Overrides the SDK's default provider chain. */
  credentials?: S3Credentials;
  /** PEM CA bundle contents trusted for the endpoint (like `settings.caFile`, for callers holding the PEM). */
  caPem?: Buffer;
  /** Where warnings go (the insecure-TLS one, a multipart upload that could not be removed); default stderr. */
  warn?: (line: string) => void;
}

/** User metadata key (x-amz-meta-...) that carries `PutOptions.owner`. */
export const OWNER_METADATA = "etcd-backup-owner";

/** A multipart upload that was started and neither completed nor aborted. Keys are relative to the prefix. */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/**
 * A bucket and prefix in AWS S3 or an S3-compatible service.
 *
 * `put` streams: bodies shorter than one part go up as a single PutObject, longer ones as a multipart upload of
 * `partSize` parts, `concurrency` at a time, so memory is about `partSize × (concurrency + 1)`. A failed or
 * aborted put, or one whose body stream errors, aborts the multipart upload and never completes it: S3 shows an
 * object only once it is complete. Each request is retried with exponential backoff and jitter on throttling,
 * 5xx and network errors, never on other 4xx.
 *
 * An `ifAbsent` put sends `If-None-Match: *` (on PutObject and on CompleteMultipartUpload), which AWS S3 (since
 * 2024) and MinIO honour: of two concurrent creates one gets 412 and nothing is replaced. Some services ignore
 * the header and overwrite. The first small `ifAbsent` put of a store finds out by sending itself again (a 412
 * means honoured; see `echo`); until it is known to be honoured, an `ifAbsent` put also checks the key first and
 * reports `exclusive: false`, so the caller knows a concurrent writer could still have overwritten it.
 */
export class S3Store implements Store {
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
  readonly settings: ResolvedS3Settings;
  /** The SDK is loaded on first use: importing it costs every command ~0.2 s even when it never touches S3. */
  private readonly clientConfig: S3ClientConfig;
  /** PEM CA bundle trusted besides the public roots (settings.caFile or options.caPem). */
  private readonly customCa: Buffer | string | undefined;
  private loading: Promise<void> | undefined;
  private loaded: S3Client | undefined;
  // Set by load(); every method that sends a request awaits it first.
  private s3!: S3Client;
  private api!: typeof import("@aws-sdk/client-s3");
  private readonly endpointForMessages: string;
  private readonly retryPolicy: RetryPolicy;
  private readonly warn: (line: string) => void;
  private conditionalSupport: boolean | undefined;
  /**
   * Whether the bucket has Object Lock enabled (see s3-object-lock.ts), asked once per store. `undefined`: the
   * service would not say (no s3:GetBucketObjectLockConfiguration).
   */
  private readonly bucketLock = new AskedOnce(async () => {
    await this.load();
    return await bucketLockEnabled(this.lockContext());
  });

  constructor(options: S3StoreOptions) {
    if (!options.bucket) throw new Error("no bucket given");
    this.bucket = options.bucket;
    this.keys = new KeyPrefix("s3", this.bucket, options.prefix);
    this.settings = resolveS3Settings(options.settings);
    this.warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    const s = this.settings;
    this.endpointForMessages = s.endpoint ?? `https://s3.${s.region}.amazonaws.com`;
    this.retryPolicy = { maxAttempts: s.maxAttempts, baseDelayMs: s.retryBaseDelayMs, maxDelayMs: 10_000 };
    if (s.insecureSkipTlsVerify) this.warn(insecureTlsWarning(this.endpointForMessages));

    // Read now, so that a bad path fails at construction; the agents are made with the client.
    this.customCa = options.caPem || s.caFile ? (options.caPem ?? readCaFile(s.caFile ?? "")) : undefined;
    const checksums = s.sdkChecksums ? "WHEN_SUPPORTED" : "WHEN_REQUIRED";
    this.clientConfig = {
      region: s.region,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      forcePathStyle: s.pathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Retries are ours (withRetry), so that the policy is one place and visible in tests.
      maxAttempts: 1,
      requestChecksumCalculation: checksums,
      responseChecksumValidation: checksums,
      followRegionRedirects: true,
    };
  }

  /** Loads the SDK and creates this store's client, once. */
  private load(): Promise<void> {
    this.loading ??= this.createClient();
    return this.loading;
  }

  private async createClient(): Promise<void> {
    // node:http alone costs ~70 ms to import (it pulls in undici); only a store that is used pays it.
    const [api, http, https, tls] = await Promise.all([
      import("@aws-sdk/client-s3"),
      import("node:http"),
      import("node:https"),
      import("node:tls"),
    ]);
    const s = this.settings;
    const sockets = s.concurrency + 4;
    const httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: sockets,
      rejectUnauthorized: !s.insecureSkipTlsVerify,
      // A custom CA is trusted in addition to the public roots, so one bundle file is enough either way.
      ...(this.customCa ? { ca: [...tls.rootCertificates, this.customCa] } : {}),
    });
    const client = new api.S3Client({
      ...this.clientConfig,
      requestHandler: {
        httpsAgent,
        httpAgent: new http.Agent({ keepAlive: true, maxSockets: sockets }),
        connectionTimeout: 10_000,
        requestTimeout: 120_000,
      },
    });
    if (this.settings.pathStyle) {
      const endpoint = this.settings.endpoint;
      const base = endpoint ? new URL(endpoint).pathname.replace(/\/+$/, "") : "";
      client.middlewareStack.add(bucketPathWithoutSlash(`${base}/${this.bucket}/`), { step: "build" });
    }
    this.api = api;
    this.s3 = client;
    this.loaded = client;
  }

  /**
   * The loaded SDK client and module, the bucket key of a store key, and the store's retry policy, for requests
   * the `Store` contract does not cover (server-side part copies: src/store/s3-part-copy.ts).
   */
  async sdk(): Promise<{
    client: S3Client;
    api: typeof import("@aws-sdk/client-s3");
    bucketKey: (key: string) => string;
    retry: <T>(operation: () => Promise<T>, signal?: AbortSignal) => Promise<T>;
    explain: (what: string, err: unknown) => Error;
  }> {
    await this.load();
    return {
      client: this.s3,
      api: this.api,
      bucketKey: (key) => this.keys.fullName(key),
      retry: (operation, signal) => this.retry(operation, signal),
      explain: (what, err) => this.explain(what, err),
    };
  }

  /** Closes the connections this store keeps open. */
  destroy(): void {
    this.loaded?.destroy();
  }

  private lockContext(): LockContext {
    return { s3: this.s3, api: this.api, bucket: this.bucket, retry: (op) => this.retry(op) };
  }

  /**
   * With object lock or legal hold configured, checks that the bucket has Object Lock enabled; a bucket without
   * it is refused with one line. Without lock configured, does nothing (no request).
   */
  async prepare(): Promise<void> {
    const lock = this.settings.objectLock;
    if (!lock) return;
    await requireLockable({
      ask: () => this.bucketLock.get(),
      failed: (err) => this.explain(`check Object Lock on ${this.location}`, err),
      cannotLock: () => noObjectLockError(this.bucket, lock),
      wouldNotTell: () =>
        new Hinted(
          `cannot tell whether bucket ${this.bucket} has Object Lock`,
          "allow s3:GetBucketObjectLockConfiguration to these credentials",
        ),
    });
  }

  /** The one-line reading of a failed request (`explain`'s cause). */
  private explainOnly(err: unknown): Error {
    return explainS3Error(err, { bucket: this.bucket, endpoint: this.endpointForMessages });
  }

  private explain(what: string, err: unknown): Error {
    return failedOperation(what, err, (cause) => this.explainOnly(cause));
  }

  private retry<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(operation, {
      policy: this.retryPolicy,
      isTransient: isTransientS3Error,
      ...(signal ? { signal } : {}),
    });
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    await this.load();
    const objectKey = this.keys.fullName(key);
    // One controller stops everything: the user's abort, a failed part, or the body's own error.
    const { stop, fail, failed, dispose } = uploadStop(body, options.signal);

    // Buffers of finished parts, filled again by the next ones.
    const partSize = this.settings.partSize;
    const free: Buffer[] = [];
    const parts = readParts(body, partSize, () => free.pop() ?? Buffer.allocUnsafe(partSize));
    // Backup data on a store that locks: the lock headers, and the Content-MD5 S3 requires with them.
    const lock = options.immutable && !options.retention ? this.settings.objectLock : undefined;
    const lockFields = options.retention
      ? retentionHeaders(options.retention, new Date())
      : lock
        ? lockHeaders(lock, new Date())
        : {};
    const locked = Object.keys(lockFields).length > 0;
    const headers = {
      Bucket: this.bucket,
      Key: objectKey,
      ContentType: options.contentType ?? "application/octet-stream",
      ...(this.settings.sse ? { ServerSideEncryption: this.settings.sse } : {}),
      ...(this.settings.sseKmsKeyId ? { SSEKMSKeyId: this.settings.sseKmsKeyId } : {}),
      ...(this.settings.storageClass ? { StorageClass: this.settings.storageClass as "STANDARD" } : {}),
      ...(options.owner ? { Metadata: { [OWNER_METADATA]: options.owner } } : {}),
      ...lockFields,
    };
    // Whether this service honours If-None-Match: known after the first small ifAbsent put (see `echo` below).
    const known = this.conditionalSupport;
    let conditional = options.ifAbsent === true && known !== false;
    let size = 0;
    try {
      if (lock) await this.prepare();
      // Where the condition may be ignored, look first; the caller is told (exclusive: false) unless known honoured.
      if (options.ifAbsent && known !== true && (await this.stat(key))) {
        body.destroy();
        throw new AlreadyExistsError(key, this.location);
      }
      const firstPart = await readFirstPart(parts, { fail, failed });
      if (firstPart.length < this.settings.partSize) {
        const send = () =>
          this.s3.send(
            new this.api.PutObjectCommand({
              ...headers,
              ...(conditional ? { IfNoneMatch: "*" } : {}),
              Body: firstPart,
              ContentLength: firstPart.length,
              ...(locked ? { ContentMD5: contentMd5(firstPart) } : {}),
            }),
            { abortSignal: stop.signal },
          );
        try {
          await this.retry(async () => {
            try {
              return await send();
            } catch (err) {
              if (!conditional || this.conditionalSupport !== undefined || !isConditionRefused(err))
                throw err;
              // The service refuses the header itself: no conditional writes here (checked above already).
              this.conditionalSupport = false;
              conditional = false;
              return await send();
            }
          }, stop.signal);
        } catch (err) {
          fail(err, true);
        }
        size = firstPart.length;
        const failure = failed();
        if (failure) throw failure.err;
        if (conditional && this.conditionalSupport === undefined) await this.echo(send);
        return {
          size,
          ...(options.ifAbsent ? { exclusive: conditional && this.conditionalSupport === true } : {}),
        };
      }
      const stored = await this.putMultipart(
        { ...headers, condition: conditional ? { IfNoneMatch: "*" } : {}, md5: locked },
        firstPart,
        parts,
        free,
        stop.signal,
        fail,
        failed,
      );
      size = stored.size;
      return { size, ...(options.ifAbsent ? { exclusive: conditional && known === true } : {}) };
    } catch (err) {
      if (err instanceof AlreadyExistsError) throw err;
      const cause = failed() ?? { err, fromService: true };
      if (conditional && cause.fromService && isPreconditionFailed(cause.err)) {
        return await settleRefusedCreate(this, key, options.owner, size);
      }
      throw failedUpload(`upload ${this.keys.where(key)}`, cause, (what, e) => this.explain(what, e));
    } finally {
      dispose();
      await parts.return(undefined).catch(() => {});
    }
  }

  private async putMultipart(
    headers: {
      Bucket: string;
      Key: string;
      Metadata?: Record<string, string>;
      condition: { IfNoneMatch?: string };
      /** Send Content-MD5 with every part (a locked upload must). */
      md5: boolean;
    },
    firstPart: Buffer,
    parts: AsyncGenerator<Buffer, void, undefined>,
    free: Buffer[],
    signal: AbortSignal,
    fail: (err: unknown, fromService: boolean) => void,
    failed: () => { err: unknown } | undefined,
  ): Promise<PutResult> {
    const { condition, md5, ...create } = headers;
    const { Bucket, Key } = create;
    let uploadId: string;
    try {
      // Not cut off by the signal: an upload created server-side whose answer we dropped could never be aborted.
      // An abort meanwhile is seen right after, and the upload aborted.
      const created = await this.retry(
        () => this.s3.send(new this.api.CreateMultipartUploadCommand(create)),
        signal,
      );
      if (!created.UploadId) throw new Error("S3 returned no upload id");
      uploadId = created.UploadId;
    } catch (err) {
      fail(err, true);
      throw err;
    }

    let done: { PartNumber: number; ETag: string }[];
    let size: number;
    try {
      ({ results: done, size } = await sendParts({
        first: firstPart,
        readPart: () => parts.next().then((next) => (next.done ? undefined : next.value)),
        sendPart: async (part, index) => {
          const PartNumber = index + 1;
          const out = await this.retry(
            () =>
              this.s3.send(
                new this.api.UploadPartCommand({
                  Bucket,
                  Key,
                  UploadId: uploadId,
                  PartNumber,
                  Body: part,
                  ContentLength: part.length,
                  ...(md5 ? { ContentMD5: contentMd5(part) } : {}),
                }),
                { abortSignal: signal },
              ),
            signal,
          );
          if (!out.ETag) throw new Error(`S3 returned no ETag for part ${PartNumber}`);
          if (part.length === this.settings.partSize) free.push(part);
          return { PartNumber, ETag: out.ETag };
        },
        concurrency: this.settings.concurrency,
        limit: {
          parts: MAX_PARTS,
          name: "parts",
          partSize: this.settings.partSize,
          hint: "raise --s3-part-size",
        },
        stop: { fail, failed },
      }));
    } catch (err) {
      await this.abortUpload(Bucket, Key, uploadId);
      throw err;
    }

    try {
      // No abort signal from here on: a completion cut off halfway would leave us not knowing the outcome.
      await this.retry(async () => {
        try {
          await this.s3.send(
            new this.api.CompleteMultipartUploadCommand({
              Bucket,
              Key,
              ...condition,
              UploadId: uploadId,
              MultipartUpload: { Parts: done },
            }),
          );
        } catch (err) {
          // A retried completion whose first try did land finds the upload gone (or, when conditional, the key
          // taken by itself); the object tells: its size, its part count and, when given, its owner.
          const owner = create.Metadata?.[OWNER_METADATA];
          const retriedInto =
            s3ErrorCode(err) === "NoSuchUpload" || (owner !== undefined && isPreconditionFailed(err));
          if (retriedInto && (await this.completedAlready(Key, size, done.length, owner))) return;
          throw err;
        }
      });
    } catch (err) {
      fail(err, true);
      await this.abortUpload(Bucket, Key, uploadId);
      throw err;
    }
    return { size };
  }

  private async completedAlready(
    objectKey: string,
    size: number,
    partCount: number,
    owner: string | undefined,
  ): Promise<boolean> {
    const head = await this.s3
      .send(new this.api.HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }))
      .catch(() => null);
    if (head?.ContentLength !== size) return false;
    // A run's owner id is random and unique: with one, the object is ours exactly when it carries it.
    if (owner !== undefined) return head.Metadata?.[OWNER_METADATA] === owner;
    return (head.ETag ?? "").replace(/"/g, "").endsWith(`-${partCount}`);
  }

  /**
   * Aborts a multipart upload. A part whose request was cut off by our abort signal may still reach the service
   * after the abort and bring the upload back (S3 documents that an upload may need aborting more than once), so
   * the abort is repeated once after a short pause; "no such upload" then means it is gone.
   */
  private async abortUpload(Bucket: string, Key: string, UploadId: string): Promise<void> {
    for (const pauseMs of [0, 250]) {
      if (pauseMs) await sleep(pauseMs);
      try {
        await this.retry(() =>
          this.s3.send(new this.api.AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
        );
      } catch (err) {
        if (s3ErrorCode(err) === "NoSuchUpload") return;
        const reason = this.explainOnly(err).message;
        this.warn(
          `warning: could not abort the multipart upload of s3://${Bucket}/${Key} (${reason}); its parts stay ` +
            "invisible but billed until a lifecycle rule with AbortIncompleteMultipartUpload removes them",
        );
        return;
      }
    }
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    await this.load();
    const Key = this.keys.fullName(key);
    const { signal } = options;
    try {
      const out = await this.retry(
        () =>
          this.s3.send(
            new this.api.GetObjectCommand({ Bucket: this.bucket, Key }),
            signal ? { abortSignal: signal } : {},
          ),
        signal,
      );
      if (!out.Body) throw new Error("S3 returned no body");
      return out.Body as Readable;
    } catch (err) {
      if (isS3NotFound(err)) {
        const hidden = await this.hiddenVersion(Key);
        if (hidden) return await this.getVersion(key, hidden, signal);
        throw new NotFoundError(key, this.location);
      }
      throw this.explain(`download ${this.keys.where(key)}`, err);
    }
  }

  /**
   * On a bucket with Object Lock, the version id of `objectKey`'s newest data when a delete marker stands over
   * it (see s3-object-lock.ts); null elsewhere, or when the key is really gone.
   */
  private async hiddenVersion(objectKey: string): Promise<string | null> {
    if ((await this.bucketLock.get().catch(() => undefined)) !== true) return null;
    try {
      return (await hiddenVersion(this.lockContext(), objectKey))?.versionId ?? null;
    } catch {
      return null;
    }
  }

  private async getVersion(key: string, VersionId: string, signal?: AbortSignal): Promise<Readable> {
    const Key = this.keys.fullName(key);
    try {
      const out = await this.retry(
        () =>
          this.s3.send(
            new this.api.GetObjectCommand({ Bucket: this.bucket, Key, VersionId }),
            signal ? { abortSignal: signal } : {},
          ),
        signal,
      );
      if (!out.Body) throw new Error("S3 returned no body");
      return out.Body as Readable;
    } catch (err) {
      if (isS3NotFound(err)) throw new NotFoundError(key, this.location);
      throw this.explain(`download ${this.keys.where(key)}`, err);
    }
  }

  /** HEAD of the key's current version, or of its newest data behind a delete marker (lock buckets); null if none. */
  private async head(key: string) {
    const Key = this.keys.fullName(key);
    const send = (VersionId?: string) =>
      this.retry(() =>
        this.s3.send(
          new this.api.HeadObjectCommand({ Bucket: this.bucket, Key, ...(VersionId ? { VersionId } : {}) }),
        ),
      );
    try {
      return { out: await send(), behindDeleteMarker: false };
    } catch (err) {
      if (!isS3NotFound(err)) throw err;
    }
    const hidden = await this.hiddenVersion(Key);
    if (!hidden) return null;
    try {
      return { out: await send(hidden), behindDeleteMarker: true };
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err;
    }
  }

  /**
   * The object's Object Lock retention and legal hold, from its HEAD (which carries them to callers allowed
   * s3:GetObjectRetention and s3:GetObjectLegalHold). On a bucket known to have no Object Lock: `NO_RETENTION`
   * without a request.
   */
  async retention(key: string): Promise<Retention> {
    await this.load();
    if ((await this.bucketLock.get().catch(() => undefined)) === false) return NO_RETENTION;
    let found: Awaited<ReturnType<typeof this.head>>;
    try {
      found = await this.head(key);
    } catch (err) {
      throw this.explain(`read the retention of ${this.keys.where(key)}`, err);
    }
    if (!found) throw new NotFoundError(key, this.location);
    return retentionFromHead(found.out);
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    await this.load();
    try {
      const found = await this.head(key);
      if (!found) return null;
      const { out } = found;
      const owner = out.Metadata?.[OWNER_METADATA];
      return {
        key,
        size: out.ContentLength ?? 0,
        lastModified: out.LastModified ?? new Date(0),
        ...(owner ? { owner } : {}),
        ...(found.behindDeleteMarker ? { behindDeleteMarker: true } : {}),
      };
    } catch (err) {
      throw this.explain(`stat ${this.keys.where(key)}`, err);
    }
  }

  async *list(prefix = ""): AsyncIterable<ObjectInfo> {
    await this.load();
    const root = this.keys.root;
    if ((await this.bucketLock.get().catch(() => undefined)) === true) {
      // Versions, so that a delete marker over a locked backup does not hide it (s3-object-lock.ts).
      let latest: Awaited<ReturnType<typeof latestDataVersions>>;
      try {
        latest = await latestDataVersions(this.lockContext(), root + prefix);
      } catch (err) {
        throw this.explain(`list the versions in ${this.location}`, err);
      }
      for (const { version, behindDeleteMarker } of latest) {
        if (!version.key.startsWith(root) || version.key.endsWith("/")) continue;
        yield {
          key: version.key.slice(root.length),
          size: version.size,
          lastModified: version.lastModified,
          ...(behindDeleteMarker ? { behindDeleteMarker } : {}),
        };
      }
      return;
    }
    let token: string | undefined;
    do {
      const ContinuationToken = token;
      let page: Awaited<ReturnType<typeof this.listPage>>;
      try {
        page = await this.retry(() => this.listPage(root + prefix, ContinuationToken));
      } catch (err) {
        throw this.explain(`list ${this.location}`, err);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(root) || object.Key.endsWith("/")) continue;
        yield {
          key: object.Key.slice(root.length),
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private listPage(Prefix: string, ContinuationToken: string | undefined) {
    return this.s3.send(
      new this.api.ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix,
        ...(ContinuationToken ? { ContinuationToken } : {}),
      }),
    );
  }

  /**
   * Whether the service honours `If-None-Match: *`: `undefined` until the first small `ifAbsent` put of this store
   * has found out (see `echo`), then remembered for the store's life.
   */
  get conditionalWrites(): boolean | undefined {
    return this.conditionalSupport;
  }

  /**
   * Learns whether the service honours conditional writes from a put that just created its object with
   * `If-None-Match: *`: the same request again must get 412 if it does. Where it is ignored, the repeat rewrites
   * the same bytes under the same key, which changes nothing; so no scratch object and no delete permission are
   * needed. A repeat that fails otherwise leaves the question open (the put then reports `exclusive: false`).
   */
  private async echo(send: () => Promise<unknown>): Promise<void> {
    try {
      await this.retry(send);
      this.conditionalSupport = false;
    } catch (err) {
      if (isPreconditionFailed(err)) this.conditionalSupport = true;
      else if (isConditionRefused(err)) this.conditionalSupport = false;
    }
  }

  /**
   * Multipart uploads under `prefix` (relative to the store's) that were started and never completed or
   * aborted: a killed save's, whose parts are billed but invisible. Throws `LeftoversUnsupported` when the
   * service cannot list them.
   *
   * Listed twice: with the prefix (what S3 answers), then with none, filtered here. MinIO lists an upload under
   * a prefix only when the prefix is its whole key, and with no prefix lists the uploads it started since its
   * own start (test/peers/minio-store.test.ts); uploads older than MinIO's process are found by neither, and
   * MinIO expires them itself (24 h by default).
   */
  async *incompleteUploads(prefix = ""): AsyncIterable<IncompleteUpload> {
    await this.load();
    const root = this.keys.root;
    const seen = new Set<string>();
    for (const listPrefix of [root + prefix, ""]) {
      for await (const upload of this.listUploads(listPrefix)) {
        if (!upload.Key?.startsWith(root + prefix) || !upload.UploadId || seen.has(upload.UploadId)) continue;
        seen.add(upload.UploadId);
        yield {
          key: upload.Key.slice(root.length),
          uploadId: upload.UploadId,
          initiated: upload.Initiated ?? new Date(0),
        };
      }
      if (root + prefix === "") return;
    }
  }

  /** Every page of ListMultipartUploads for one prefix. */
  private async *listUploads(Prefix: string): AsyncIterable<import("@aws-sdk/client-s3").MultipartUpload> {
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const markers = { ...(KeyMarker ? { KeyMarker } : {}), ...(UploadIdMarker ? { UploadIdMarker } : {}) };
      let page: import("@aws-sdk/client-s3").ListMultipartUploadsCommandOutput;
      try {
        page = await this.retry(() =>
          this.s3.send(
            new this.api.ListMultipartUploadsCommand({
              Bucket: this.bucket,
              ...(Prefix ? { Prefix } : {}),
              ...markers,
            }),
          ),
        );
      } catch (err) {
        const code = s3ErrorCode(err);
        if (code === "NotImplemented" || code === "MethodNotAllowed" || httpStatus(err) === 501)
          throw new LeftoversUnsupported(`${this.location} cannot list multipart uploads (${code})`);
        throw this.explain(`list the multipart uploads in ${this.location}`, err);
      }
      yield* page.Uploads ?? [];
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) return;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** Aborts one incomplete multipart upload, dropping its parts; one that is gone already counts as done. */
  async abortIncompleteUpload(key: string, uploadId: string): Promise<void> {
    await this.load();
    const Key = this.keys.fullName(key);
    try {
      await this.retry(() =>
        this.s3.send(
          new this.api.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId }),
        ),
      );
    } catch (err) {
      if (s3ErrorCode(err) === "NoSuchUpload" || isS3NotFound(err)) return;
      throw this.explain(`abort the multipart upload of ${this.keys.where(key)}`, err);
    }
  }

  /** Incomplete multipart uploads under `prefix`, as the store contract's leftovers. */
  async *leftovers(prefix = ""): AsyncIterable<Leftover> {
    for await (const u of this.incompleteUploads(prefix))
      yield { key: u.key, kind: "multipart upload", since: u.initiated, id: u.uploadId };
  }

  async removeLeftover(leftover: Leftover): Promise<void> {
    await this.abortIncompleteUpload(leftover.key, leftover.id);
  }

  async delete(key: string): Promise<void> {
    await this.load();
    const Key = this.keys.fullName(key);
    if ((await this.bucketLock.get().catch(() => undefined)) === true) {
      // By version id: a plain delete would only stack a delete marker over data that stays (and is billed).
      try {
        await deleteAllVersions(this.lockContext(), Key);
      } catch (err) {
        if (isLockRefusal(err)) {
          const hold = await this.retention(key).then(
            (r) => retentionHold(r, new Date()),
            () => null,
          );
          if (hold) throw new Error(`delete ${this.keys.where(key)}: ${hold}`, { cause: err });
        }
        throw this.explain(`delete ${this.keys.where(key)}`, err);
      }
      return;
    }
    try {
      await this.retry(() => this.s3.send(new this.api.DeleteObjectCommand({ Bucket: this.bucket, Key })));
    } catch (err) {
      if (isS3NotFound(err)) return;
      throw this.explain(`delete ${this.keys.where(key)}`, err);
    }
  }
}

/**
 * Bucket-level requests in path style (ListObjectsV2) go to `/bucket`, not `/bucket/` as this SDK version builds
 * them: S3 and the compatible servers accept both, since `/bucket` is what the AWS CLI and earlier SDKs send, but
 * some servers (s3rver) compute the SigV4 canonical path as `/bucket` and reject the other form's signature.
 * It runs in the build step, before signing, so the signature covers the path actually sent.
 */
function bucketPathWithoutSlash(bucketPath: string) {
  return <Input extends object, Output extends object>(
    next: (args: { request: unknown; input: Input }) => Promise<Output>,
  ) =>
    async (args: { request: unknown; input: Input }): Promise<Output> => {
      const request = args.request as { path?: unknown };
      if (request.path === bucketPath) {
        request.path = bucketPath.slice(0, -1);
      }
      return next(args);
    };
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Hinted(`cannot read the S3 CA bundle ${path}`, "check the --s3-ca path", { cause: err });
  }
}

/** The service rejects the If-None-Match header itself (rather than ignoring it or evaluating it). */
function isConditionRefused(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === "NotImplemented" || httpStatus(err) === 501;
}

/** 412: a conditional write found the key taken. */
function isPreconditionFailed(err: unknown): boolean {
  return s3ErrorCode(err) === "PreconditionFailed" || httpStatus(err) === 412;
}
