import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { BlockBlobClient, ContainerClient } from "@azure/storage-blob";
import { Hinted } from "../errors.ts";
import { VERSION } from "../version.ts";
import { AskedOnce } from "./asked-once.ts";
import {
  azureErrorCode,
  azureStatus,
  explainAzureError,
  isBlobExists,
  isBlobNotFound,
  isImmutableRefusal,
  isTransientAzureError,
} from "./azure-errors.ts";
import {
  type ImmutabilityFields,
  lockFields,
  noImmutabilityError,
  retentionFields,
  retentionFromProperties,
} from "./azure-immutability.ts";
import {
  type AzureSecrets,
  type AzureSettings,
  MAX_BLOCKS,
  type ResolvedAzureSettings,
  resolveAzureSettings,
} from "./azure-settings.ts";
import { failedOperation, failedUpload } from "./failed-operation.ts";
import { readFirstPart } from "./first-part.ts";
import { KeyPrefix } from "./key-prefix.ts";
import { createLanded, settleRefusedCreate } from "./landed-create.ts";
import { requireLockable } from "./lock-check.ts";
import { sendParts } from "./part-sender.ts";
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

export interface AzureBlobStoreOptions {
  container: string;
  /** Blob name prefix without leading or trailing slashes; empty for the container's root. */
  prefix?: string;
  settings?: AzureSettings;
  /** Credentials as values (environment, a Secret); see `resolveAzureSettings` for which one is used. */
  secrets?: AzureSecrets;
  /** Where warnings go (staged blocks that could not be discarded); default stderr. */
  warn?: (line: string) => void;
  /** Blobs per listing page; Azure's maximum (5000) unless a test wants to see paging with fewer blobs. */
  listPageSize?: number;
}

/** Metadata names (Azure wants C# identifiers) for `PutOptions.owner` and for a discard marker (below). */
const OWNER_METADATA = "etcdbackup_owner";
const DISCARD_METADATA = "etcdbackup_discard";

/**
 * A container and prefix in Azure Blob Storage (or Azurite).
 *
 * `put` streams: a body shorter than one block goes up as one Put Blob; a longer one is staged block by block
 * (`blockSize` bytes, `concurrency` at a time, so memory is about `blockSize × (concurrency + 1)`) and becomes a
 * blob only when Put Block List commits the list at the end. Staged blocks are invisible: no listing, read or
 * HEAD shows them, so a put that fails, is aborted or is killed never leaves an object that looks complete.
 *
 * `ifAbsent` sends `If-None-Match: *` on Put Blob and on Put Block List, which Azure (and Azurite) evaluate
 * atomically: of two concurrent creates one gets 409 BlobAlreadyExists and nothing is replaced, so creates are
 * exclusive (`PutResult.exclusive` is always true).
 *
 * What an interrupted put leaves: the blocks it staged, held by Azure against the blob's name without a blob.
 * Azure drops uncommitted blocks a week after the last Put Block/Put Block List on the name, and they are billed
 * until then. A put that fails or is aborted discards its own at once; a killed one cannot, so `leftovers` lists
 * names that have uncommitted blocks and no blob (as the contract's "multipart upload": an upload in parts never
 * completed) and `removeLeftover` discards them. Blocks staged against a name that has a committed blob (an
 * interrupted overwrite) are not visible in any listing and are left to Azure's expiry.
 *
 * Azure has no call that drops uncommitted blocks alone; committing an empty block list drops them. So a discard
 * commits an empty list with `If-None-Match: *` (never over a real blob) and a discard marker in its metadata,
 * then deletes that empty blob by its ETag. This store never shows a blob carrying the marker (`list`, `stat` and
 * `get` skip it); other tools may see an empty blob for the few milliseconds between the two requests, and
 * `leftovers` reports one a killed discard left.
 *
 * Immutability (azure-immutability.ts): with `settings.objectLock`, backup data (`PutOptions.immutable`) is
 * written under a version-level immutability policy and/or legal hold, on the same Put Blob or Put Block List that
 * creates it, so no unlocked version of it ever exists. `prepare` (and the first locked write) checks that the
 * container has version-level immutability. On such a container `delete` removes every version of the key after
 * checking that none is held (Azure keeps a deleted or overwritten version as a previous version), and refuses
 * with the hold otherwise; `list`, `get` and `stat` still find a held version whose current version someone
 * deleted; `retention` reads the policy back from Get Blob Properties.
 *
 * Every request is retried with exponential backoff and jitter on throttling, 5xx and network errors (the SDK's
 * own retries are off, so the policy is ours), never on other 4xx.
 */
export class AzureBlobStore implements Store {
  readonly container: string;
  /** The prefix, the store's location and every key's full name: one place for all three. */
  private readonly keys: KeyPrefix;
  get location(): string {
    return this.keys.location;
  }
  /** Without leading or trailing slashes; empty for the root. */
  get prefix(): string {
    return this.keys.prefix;
  }
  readonly settings: ResolvedAzureSettings;
  private readonly retryPolicy: RetryPolicy;
  private readonly warn: (line: string) => void;
  private loading: Promise<ContainerClient> | undefined;
  private readonly listPageSize: number;
  /**
   * Whether the container has version-level immutability (Get Container Properties), asked once per store.
   * `undefined`: the service would not say (403: a SAS or role that may not read container properties).
   */
  private readonly versionLevelImmutability = new AskedOnce(async () => {
    const container = await this.client();
    try {
      const props = await this.retry(() => container.getProperties());
      return props.isImmutableStorageWithVersioningEnabled === true;
    } catch (err) {
      if (azureErrorCode(err) !== "ContainerNotFound" && azureStatus(err) === 403) return undefined;
      throw err;
    }
  });
  private toldVersionsKept = false;

  constructor(options: AzureBlobStoreOptions) {
    if (!options.container) throw new Error("no container given");
    this.container = options.container;
    this.keys = new KeyPrefix("azblob", this.container, options.prefix);
    // Resolved now, so that a bad setting or an unreadable key file fails before any work is done.
    this.settings = resolveAzureSettings(options.settings, options.secrets);
    this.warn = options.warn ?? ((line) => process.stderr.write(`${line}\n`));
    this.listPageSize = options.listPageSize ?? 5000;
    const s = this.settings;
    this.retryPolicy = { maxAttempts: s.maxAttempts, baseDelayMs: s.retryBaseDelayMs, maxDelayMs: 10_000 };
  }

  /** Nothing to release (the SDK's connections are not held open past use); here to match `S3Store`. */
  destroy(): void {}

  /** The secret values this store authenticates with, for the caller's redactor. Never print them. */
  get secrets(): readonly string[] {
    return this.settings.secrets;
  }

  /** The SDK (and, for token credentials, @azure/identity) is loaded on first use: it costs every command. */
  private client(): Promise<ContainerClient> {
    this.loading ??= this.createClient();
    return this.loading;
  }

  private async createClient(): Promise<ContainerClient> {
    const api = await import("@azure/storage-blob");
    const s = this.settings;
    const pipeline = {
      // Retries are ours (withRetry), so that the policy is one place and visible in tests.
      retryOptions: { maxTries: 1, tryTimeoutInMs: 120_000 },
      userAgentOptions: { userAgentPrefix: `etcd-backup/${VERSION}` },
    };
    const url = `${s.endpoint}/${encodeURIComponent(this.container)}`;
    const auth = s.auth;
    if (auth.kind === "shared key") {
      return new api.ContainerClient(
        url,
        new api.StorageSharedKeyCredential(s.account, auth.accountKey),
        pipeline,
      );
    }
    if (auth.kind === "sas")
      return new api.ContainerClient(`${url}?${auth.sasToken}`, new api.AnonymousCredential(), pipeline);
    const identity = await import("@azure/identity");
    return new api.ContainerClient(url, new identity.DefaultAzureCredential(), pipeline);
  }

  /** The one-line reading of a failed request (`explain`'s cause). */
  private explainOnly(err: unknown): Error {
    return explainAzureError(err, {
      account: this.settings.account,
      container: this.container,
      endpoint: this.settings.endpoint,
      auth: this.settings.auth.kind,
    });
  }

  private explain(what: string, err: unknown): Error {
    return failedOperation(what, err, (cause) => this.explainOnly(cause));
  }

  private retry<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetry(operation, {
      policy: this.retryPolicy,
      isTransient: isTransientAzureError,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * With a lock configured (`settings.objectLock`), checks that the container has version-level immutability and
   * refuses in one line otherwise. Without one, does nothing (no request).
   */
  async prepare(): Promise<void> {
    const lock = this.settings.objectLock;
    if (!lock) return;
    await requireLockable({
      ask: () => this.versionLevelImmutability.get(),
      failed: (err) => this.explain(`check version-level immutability on ${this.location}`, err),
      cannotLock: () => noImmutabilityError(this.settings.account, this.container, lock),
      wouldNotTell: () =>
        new Hinted(
          `cannot tell whether container ${this.container} has version-level immutability (Get Container Properties was denied)`,
          "use credentials that may read the container's properties (an account key, or Storage Blob Data Contributor)",
        ),
    });
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const container = await this.client();
    const blob = container.getBlockBlobClient(this.keys.fullName(key));
    // One controller stops everything: the user's abort, a failed part, or the body's own error.
    const { stop, fail, failed, dispose } = uploadStop(body, options.signal);

    const blockSize = this.settings.blockSize;
    const free: Buffer[] = [];
    const parts = readParts(body, blockSize, () => free.pop() ?? Buffer.allocUnsafe(blockSize));
    // Backup data on a store that locks: the policy and hold go on the request that creates the blob.
    const lock = options.immutable && !options.retention ? this.settings.objectLock : undefined;
    const immutability: ImmutabilityFields = options.retention
      ? retentionFields(options.retention, new Date())
      : lock
        ? lockFields(lock, new Date())
        : {};
    const common = {
      blobHTTPHeaders: { blobContentType: options.contentType ?? "application/octet-stream" },
      ...(options.owner ? { metadata: { [OWNER_METADATA]: options.owner } } : {}),
      ...(options.ifAbsent ? { conditions: { ifNoneMatch: "*" } } : {}),
      ...immutability,
    };
    let size = 0;
    try {
      if (lock) {
        try {
          await this.prepare();
        } catch (err) {
          fail(err, false);
          throw err;
        }
      }
      // Look first, so that a taken name fails before the body is read; the condition decides races.
      if (options.ifAbsent && !failed() && (await this.stat(key))) {
        body.destroy();
        throw new AlreadyExistsError(key, this.location);
      }
      const firstBlock = await readFirstPart(parts, { fail, failed });
      size = firstBlock.length;
      if (firstBlock.length < blockSize) {
        try {
          await this.retry(
            () => blob.upload(firstBlock, firstBlock.length, { ...common, abortSignal: stop.signal }),
            stop.signal,
          );
        } catch (err) {
          fail(err, true);
        }
        const failure = failed();
        if (failure) throw failure.err;
        return { size, ...(options.ifAbsent ? { exclusive: true } : {}) };
      }
      const ids = await this.stageBlocks(
        blob,
        this.keys.where(key),
        firstBlock,
        parts,
        free,
        stop.signal,
        fail,
        failed,
      );
      size = ids.size;
      try {
        // No abort signal from here on: a commit cut off halfway would leave us not knowing the outcome.
        await this.retry(async () => {
          try {
            await blob.commitBlockList(ids.blocks, common);
          } catch (err) {
            // A retried commit whose first try did land finds the blob there: its owner and size tell.
            if (
              options.ifAbsent &&
              options.owner &&
              isBlobExists(err) &&
              (await createLanded(this, key, options.owner, size))
            )
              return;
            throw err;
          }
        });
      } catch (err) {
        fail(err, true);
        await this.discardStaged(blob, this.keys.where(key));
        throw err;
      }
      return { size, ...(options.ifAbsent ? { exclusive: true } : {}) };
    } catch (err) {
      if (err instanceof AlreadyExistsError) throw err;
      const cause = failed() ?? { err, fromService: true };
      if (
        options.ifAbsent &&
        cause.fromService &&
        (isBlobExists(cause.err) || lostToAnotherCommit(cause.err))
      ) {
        // A commit that lost its blocks to another writer's commit finds a blob there (theirs, or our own
        // earlier try's); without one, it failed otherwise.
        if (isBlobExists(cause.err) || (await this.stat(key).catch(() => null)))
          return await settleRefusedCreate(this, key, options.owner, size);
      }
      throw failedUpload(`upload ${this.keys.where(key)}`, cause, (what, e) => this.explain(what, e));
    } finally {
      dispose();
      await parts.return(undefined).catch(() => {});
    }
  }

  /**
   * Stages the blocks, `concurrency` at a time, and returns their ids in order. On failure it waits for the
   * blocks in flight, discards what was staged, and throws the first failure.
   */
  private async stageBlocks(
    blob: BlockBlobClient,
    where: string,
    firstBlock: Buffer,
    parts: AsyncGenerator<Buffer, void, undefined>,
    free: Buffer[],
    signal: AbortSignal,
    fail: (err: unknown, fromService: boolean) => void,
    failed: () => { err: unknown } | undefined,
  ): Promise<{ blocks: string[]; size: number }> {
    // Block ids must have one length within a blob; a random run id keeps a concurrent writer's apart.
    const run = randomBytes(9).toString("hex");
    const blockId = (n: number) => Buffer.from(`${run}-${String(n).padStart(6, "0")}`).toString("base64");
    try {
      const sent = await sendParts({
        first: firstBlock,
        readPart: () => parts.next().then((next) => (next.done ? undefined : next.value)),
        sendPart: async (block, index) => {
          const id = blockId(index);
          await this.retry(() => blob.stageBlock(id, block, block.length, { abortSignal: signal }), signal);
          if (block.length === this.settings.blockSize) free.push(block);
          return id;
        },
        concurrency: this.settings.concurrency,
        limit: {
          parts: MAX_BLOCKS,
          name: "blocks",
          partSize: this.settings.blockSize,
          hint: "raise --azure-block-size",
        },
        stop: { fail, failed },
      });
      return { blocks: sent.results, size: sent.size };
    } catch (err) {
      await this.discardStaged(blob, where);
      throw err;
    }
  }

  /**
   * Drops the uncommitted blocks staged against a name that has no blob (see the class comment for how). A block
   * whose request our abort cut off may still reach the service after the first discard, so the name is looked at
   * again after a short pause and discarded once more if it has blocks again. A blob under the name (an
   * interrupted overwrite) is left alone: its uncommitted blocks expire.
   */
  private async discardStaged(blob: BlockBlobClient, what: string): Promise<void> {
    for (const pauseMs of [0, 250]) {
      if (pauseMs) {
        await sleep(pauseMs);
        if (!(await this.hasUncommittedBlocks(blob))) return;
      }
      try {
        await this.discard(blob);
      } catch (err) {
        // Nothing can have been staged in a container that does not exist; the put's own error says so.
        if (azureErrorCode(err) === "ContainerNotFound") return;
        const reason = this.explainOnly(err).message;
        this.warn(
          `warning: could not discard the staged blocks of ${what} (${reason}); they stay invisible but billed ` +
            "until Azure drops them a week after the last upload to that name",
        );
        return;
      }
    }
  }

  private async hasUncommittedBlocks(blob: BlockBlobClient): Promise<boolean> {
    try {
      const list = await this.retry(() => blob.getBlockList("uncommitted"));
      return (list.uncommittedBlocks?.length ?? 0) > 0;
    } catch {
      return false;
    }
  }

  /**
   * Commits an empty block list marked as a discard (only where no blob is), which drops every uncommitted block
   * of the name, then deletes that empty blob by its ETag. A blob already under the name counts as done.
   */
  private async discard(blob: BlockBlobClient): Promise<void> {
    let etag: string | undefined;
    let versionId: string | undefined;
    try {
      const out = await this.retry(() =>
        blob.commitBlockList([], {
          conditions: { ifNoneMatch: "*" },
          metadata: { [DISCARD_METADATA]: "1" },
        }),
      );
      etag = out.etag;
      versionId = out.versionId;
    } catch (err) {
      if (!isBlobExists(err)) throw err;
      // A blob is there: ours to delete only if it is a discard marker (a killed discard's).
      const props = await this.retry(() => blob.getProperties()).catch(() => undefined);
      if (!props?.metadata?.[DISCARD_METADATA]) return;
      etag = props.etag;
      versionId = props.versionId;
    }
    try {
      await this.retry(() => blob.delete({ conditions: etag ? { ifMatch: etag } : {} }));
    } catch (err) {
      if (isBlobNotFound(err) || azureErrorCode(err) === "ConditionNotMet" || isBlobExists(err)) return;
      throw err;
    }
    // On a versioned account the marker lives on as a previous version: remove that too (best effort; it is
    // empty, never shown, and a lifecycle rule on previous versions would take it anyway).
    if (versionId) {
      const id = versionId;
      await this.retry(() => blob.withVersion(id).delete()).catch(() => {});
    }
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const container = await this.client();
    const blob = container.getBlockBlobClient(this.keys.fullName(key));
    const { signal } = options;
    try {
      const out = await this.retry(
        () => blob.download(0, undefined, signal ? { abortSignal: signal } : {}),
        signal,
      );
      const stream = out.readableStreamBody as Readable | undefined;
      if (out.metadata?.[DISCARD_METADATA]) {
        stream?.destroy();
        throw new NotFoundError(key, this.location);
      }
      if (!stream) throw new Error("Azure returned no body");
      return stream;
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      if (!isBlobNotFound(err)) throw this.explain(`download ${this.keys.where(key)}`, err);
    }
    const hidden = await this.heldHiddenVersion(this.keys.fullName(key));
    if (!hidden) throw new NotFoundError(key, this.location);
    try {
      const version = container.getBlobClient(this.keys.fullName(key)).withVersion(hidden);
      const out = await this.retry(
        () => version.download(0, undefined, signal ? { abortSignal: signal } : {}),
        signal,
      );
      const stream = out.readableStreamBody as Readable | undefined;
      if (!stream) throw new Error("Azure returned no body");
      return stream;
    } catch (err) {
      if (isBlobNotFound(err)) throw new NotFoundError(key, this.location);
      throw this.explain(`download ${this.keys.where(key)}`, err);
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const found = await this.properties(key);
      if (!found) return null;
      const { out, hidden } = found;
      if (out.metadata?.[DISCARD_METADATA]) return null;
      const owner = out.metadata?.[OWNER_METADATA];
      return {
        key,
        size: out.contentLength ?? 0,
        lastModified: out.lastModified ?? new Date(0),
        ...(owner ? { owner } : {}),
        ...(hidden ? { behindDeleteMarker: true } : {}),
      };
    } catch (err) {
      throw this.explain(`stat ${this.keys.where(key)}`, err);
    }
  }

  /** Get Blob Properties of the current version, or of the held version behind a deleted one (see `list`). */
  private async properties(key: string) {
    const container = await this.client();
    const name = this.keys.fullName(key);
    try {
      return {
        out: await this.retry(() => container.getBlockBlobClient(name).getProperties()),
        hidden: false,
      };
    } catch (err) {
      if (!isBlobNotFound(err)) throw err;
    }
    const hidden = await this.heldHiddenVersion(name);
    if (!hidden) return null;
    try {
      const version = container.getBlobClient(name).withVersion(hidden);
      return { out: await this.retry(() => version.getProperties()), hidden: true };
    } catch (err) {
      if (isBlobNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * The blob's version-level immutability policy and legal hold, from Get Blob Properties. On a container known
   * to have no version-level immutability: `NO_RETENTION` without a request (no blob there can carry a policy).
   */
  async retention(key: string): Promise<Retention> {
    if ((await this.versionLevelImmutability.get().catch(() => undefined)) === false) return NO_RETENTION;
    let found: Awaited<ReturnType<typeof this.properties>>;
    try {
      found = await this.properties(key);
    } catch (err) {
      throw this.explain(`read the retention of ${this.keys.where(key)}`, err);
    }
    if (!found || found.out.metadata?.[DISCARD_METADATA]) throw new NotFoundError(key, this.location);
    return retentionFromProperties(found.out);
  }

  /**
   * Every blob under the prefix. On a container with version-level immutability, a name whose current version was
   * deleted (Azure keeps it as a previous version) while a version of it is still held is listed too, as its
   * newest held version with `behindDeleteMarker`, and `get`/`stat`/`retention` read that version: whoever deleted
   * it cannot hide a held backup from restore. Versions nobody holds any more are not shown.
   */
  async *list(prefix = ""): AsyncIterable<ObjectInfo> {
    const root = this.keys.root;
    const shown = (item: ListedBlob) =>
      item.name.startsWith(root) && !item.name.endsWith("/") && !item.discardMarker && !item.directory;
    if ((await this.versionLevelImmutability.get().catch(() => undefined)) !== true) {
      for await (const item of this.listBlobs(root + prefix, false)) {
        if (!shown(item)) continue;
        yield { key: item.name.slice(root.length), size: item.size, lastModified: item.lastModified };
      }
      return;
    }
    // Azure lists the versions of one name together, so one name's are weighed at a time.
    const now = new Date();
    let current: ListedBlob | undefined;
    let held: ListedBlob | undefined;
    let name: string | undefined;
    const pick = (): ObjectInfo | undefined => {
      const item = current ?? held;
      if (!item || !shown(item)) return undefined;
      return {
        key: item.name.slice(root.length),
        size: item.size,
        lastModified: item.lastModified,
        ...(current ? {} : { behindDeleteMarker: true }),
      };
    };
    for await (const item of this.listBlobs(root + prefix, false, true)) {
      if (item.name !== name) {
        const out = pick();
        if (out) yield out;
        name = item.name;
        current = held = undefined;
      }
      if (item.current) current = item;
      else if (
        retentionHold(item.retention, now) &&
        (!held || (item.versionId ?? "") > (held.versionId ?? ""))
      )
        held = item;
    }
    const out = pick();
    if (out) yield out;
  }

  /**
   * On a container with version-level immutability, the id of the newest held version of `name` when it has no
   * current version (someone deleted it; see `list`); null otherwise, or when that cannot be told.
   */
  private async heldHiddenVersion(name: string): Promise<string | null> {
    if ((await this.versionLevelImmutability.get().catch(() => undefined)) !== true) return null;
    let versions: BlobVersion[];
    try {
      versions = await this.versionsOf(name);
    } catch {
      return null;
    }
    if (versions.some((v) => v.current)) return null;
    const now = new Date();
    const held = versions
      .filter((v) => v.versionId && retentionHold(v.retention, now))
      .sort((a, b) => ((a.versionId ?? "") < (b.versionId ?? "") ? 1 : -1));
    return held[0]?.versionId ?? null;
  }

  /** Every page of List Blobs under one name prefix, with metadata, retried page by page. */
  private async *listBlobs(
    namePrefix: string,
    uncommitted: boolean,
    versions = false,
  ): AsyncIterable<ListedBlob> {
    const container = await this.client();
    let token: string | undefined;
    do {
      const continuationToken = token;
      let page: import("@azure/storage-blob").ContainerListBlobFlatSegmentResponse;
      try {
        page = await this.retry(async () => {
          const pages = container
            .listBlobsFlat({
              ...(namePrefix ? { prefix: namePrefix } : {}),
              includeMetadata: true,
              ...(uncommitted ? { includeUncommitedBlobs: true } : {}),
              ...(versions
                ? { includeVersions: true, includeImmutabilityPolicy: true, includeLegalHold: true }
                : {}),
            })
            .byPage({ maxPageSize: this.listPageSize, ...(continuationToken ? { continuationToken } : {}) });
          const next = await pages.next();
          if (next.done) throw new Error("Azure returned no listing page");
          return next.value;
        });
      } catch (err) {
        throw this.explain(`list ${this.location}`, err);
      }
      for (const item of page.segment.blobItems) {
        const p = item.properties;
        yield {
          name: item.name,
          size: p.contentLength ?? 0,
          lastModified: p.lastModified ?? new Date(0),
          // Unknown age counts as new: prune keeps it (it may be an upload in flight) rather than cut it off.
          since: p.createdOn ?? p.lastModified ?? new Date(),
          discardMarker: Boolean(item.metadata?.[DISCARD_METADATA]),
          // A hierarchical-namespace account lists its directories as empty blobs marked hdi_isfolder.
          directory: item.metadata?.hdi_isfolder === "true",
          ...(item.versionId ? { versionId: item.versionId } : {}),
          // Without versions listed every item is current; with them, one written before versioning has no id.
          current: !versions || item.isCurrentVersion === true || !item.versionId,
          retention: versions ? retentionFromProperties(p) : NO_RETENTION,
        };
      }
      token = page.continuationToken || undefined;
    } while (token);
  }

  /**
   * Names under `prefix` that hold uncommitted blocks and no blob (an interrupted put's), and discard markers a
   * killed discard left; both as the contract's "multipart upload", with the blob name as id. Found by listing
   * twice, with and without uncommitted blobs: Azure marks neither kind in a listing.
   */
  async *leftovers(prefix = ""): AsyncIterable<Leftover> {
    const root = this.keys.root;
    const committed = new Set<string>();
    for await (const item of this.listBlobs(root + prefix, false))
      if (!item.discardMarker) committed.add(item.name);
    for await (const item of this.listBlobs(root + prefix, true)) {
      if (committed.has(item.name) || !item.name.startsWith(root)) continue;
      yield { key: item.name.slice(root.length), kind: "multipart upload", since: item.since, id: item.name };
    }
  }

  /** Discards one leftover's blocks (or marker); one that is gone, or has become a blob, counts as removed. */
  async removeLeftover(leftover: Leftover): Promise<void> {
    const container = await this.client();
    try {
      await this.discard(container.getBlockBlobClient(this.keys.fullName(leftover.key)));
    } catch (err) {
      throw this.explain(`discard the staged blocks of ${this.keys.where(leftover.key)}`, err);
    }
  }

  /**
   * Deletes the blob. On a container with version-level immutability, every version of it (Azure keeps a deleted
   * current version, and each overwritten one, as a previous version, billed): first the versions are listed with
   * their policies, and if any is held the delete is refused with the hold and nothing is touched; then the current
   * version goes, then each version by id. Credentials that may not delete versions (403: Storage Blob Data
   * Contributor, a SAS without `x`) still remove the key for every reader; the versions stay, and one warning per
   * store says so. Elsewhere one Delete Blob. A refusal of the service's (409 BlobImmutableDueToPolicy) is one
   * line with the hold when it can be read.
   */
  async delete(key: string): Promise<void> {
    const container = await this.client();
    const name = this.keys.fullName(key);
    const blob = container.getBlockBlobClient(name);
    const refused = async (err: unknown): Promise<Error> => {
      if (isImmutableRefusal(err)) {
        const hold = await this.retention(key).then(
          (r) => retentionHold(r, new Date()),
          () => null,
        );
        if (hold) return new Error(`delete ${this.keys.where(key)}: ${hold}`);
      }
      return this.explain(`delete ${this.keys.where(key)}`, err);
    };
    if ((await this.versionLevelImmutability.get().catch(() => undefined)) !== true) {
      try {
        await this.retry(() => blob.delete({ deleteSnapshots: "include" }));
      } catch (err) {
        if (isBlobNotFound(err)) return;
        throw await refused(err);
      }
      return;
    }
    let versions: BlobVersion[];
    try {
      versions = await this.versionsOf(name);
    } catch (err) {
      throw this.explain(`list the versions of ${this.keys.where(key)}`, err);
    }
    const now = new Date();
    for (const v of versions) {
      const hold = retentionHold(v.retention, now);
      if (hold)
        throw new Error(
          `delete ${this.keys.where(key)}: ${hold}${v.current ? "" : " on an earlier version of it"}`,
        );
    }
    try {
      if (versions.some((v) => v.current))
        await this.retry(() => blob.delete({ deleteSnapshots: "include" })).catch((err) => {
          if (!isBlobNotFound(err)) throw err;
        });
      for (const v of versions) {
        if (!v.versionId) continue;
        const id = v.versionId;
        const denied = await this.retry(() => container.getBlobClient(name).withVersion(id).delete()).then(
          () => false,
          (err) => {
            if (isBlobNotFound(err)) return false;
            // Deleting a version is a permission of its own (deleteBlobVersion/action, SAS `x`), which
            // Storage Blob Data Contributor lacks: the key is gone for every reader, its versions are not.
            if (azureStatus(err) === 403) return true;
            throw err;
          },
        );
        if (denied) {
          this.warnVersionsKept();
          break;
        }
      }
    } catch (err) {
      throw await refused(err);
    }
  }

  /** Says once per store that deleted blobs leave their previous versions behind (see `delete`). */
  private warnVersionsKept(): void {
    if (this.toldVersionsKept) return;
    this.toldVersionsKept = true;
    this.warn(
      `warning: ${this.location} has version-level immutability, and these credentials may not delete blob ` +
        "versions: deleted backups keep their previous versions (unlisted, but billed); grant " +
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/deleteBlobVersion/action (Storage Blob " +
        "Data Owner, or a custom role; SAS permission x), or add a lifecycle rule that deletes previous versions",
    );
  }

  /** Every version of exactly the blob `name` (a full name), with its policy; empty when there is none. */
  private async versionsOf(name: string): Promise<BlobVersion[]> {
    const container = await this.client();
    return await this.retry(async () => {
      const out: BlobVersion[] = [];
      const pages = container
        .listBlobsFlat({
          prefix: name,
          includeVersions: true,
          includeImmutabilityPolicy: true,
          includeLegalHold: true,
        })
        .byPage({ maxPageSize: this.listPageSize });
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          if (item.name !== name) continue;
          out.push({
            ...(item.versionId ? { versionId: item.versionId } : {}),
            // A blob written before versioning was turned on has no version id: it is the current one.
            current: item.isCurrentVersion === true || !item.versionId,
            retention: retentionFromProperties(item.properties),
          });
        }
      }
      return out;
    });
  }
}

/** One item of a listing (a blob, or with versions listed, one version of it). */
interface ListedBlob {
  name: string;
  size: number;
  lastModified: Date;
  since: Date;
  discardMarker: boolean;
  directory: boolean;
  versionId?: string;
  current: boolean;
  retention: Retention;
}

/** One version of a blob on a container with versioning, as `delete` weighs it. */
interface BlobVersion {
  versionId?: string;
  current: boolean;
  retention: Retention;
}

/** A commit whose staged blocks a competing writer's commit to the same name dropped (Azure: InvalidBlockList). */
function lostToAnotherCommit(err: unknown): boolean {
  return azureErrorCode(err) === "InvalidBlockList";
}
