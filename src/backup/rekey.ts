/**
 * Rekeys one stored age object (a backup or a log segment): the same file key wrapped for a new set of
 * recipients, a new header MAC, and the payload byte for byte unchanged. Never decrypts the payload.
 *
 * Steps, each safe to be killed after (src/catalog/rekey-journal.ts says how readers see the states):
 * 1. read the old header, unwrap the file key with the given identity, build the new header;
 * 2. store the rewritten object under `<key>.rekey-new.<run>`: in a directory and on small S3 objects by streaming the
 *    new header and the old payload; on larger S3 objects by a multipart upload whose first part is sent and
 *    whose other parts are server-side copies of the old object (src/store/s3-part-copy.ts);
 * 3. verify it: the header parses and its MAC checks with the file key, and the payload is the old one (the
 *    old header followed by the new object's payload hashes to the sha256 the manifest recorded, or to the old
 *    object's own hash where the manifest has none); this is where the new object's sha256 comes from;
 * 4. write the journal `<key>.rekey` with the new manifest (only if absent: a concurrent rekey of the object fails);
 * 5. move the rewritten object over `<key>` (rename; server-side copy on S3) and check its size and header;
 * 6. write the manifest; 7. remove the journal.
 * Under S3 Object Lock the new versions of the object and of its manifest are written with the lock (mode, date,
 * legal hold) of the versions they replace, in the same request; the staging object and the journal are never
 * locked, so they can be removed; the old locked versions stay in the bucket until their date (said once).
 * On Google Cloud Storage a held object (object retention, bucket policy, hold) cannot be replaced at all: such an
 * object is refused before anything is written, and keeps its old recipients (the run reports it as failed).
 * A later rekey of the same object first finishes (object already new) or undoes (object still old) an
 * interrupted one: `recoverInterruptedRekey`.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  AgeDecryptError,
  checkHeader,
  type Identity,
  type Recipient,
  readHeaderFrom,
  rewrapHeader,
  unwrapFileKey,
} from "../age/index.ts";
import {
  headerDigest,
  journalKey,
  keptLock,
  type RekeyJournal,
  readPrefix,
  removeStaging,
  stagingKey,
} from "../catalog/rekey-journal.ts";
import { Hinted } from "../errors.ts";
import { GcsStore } from "../store/gcs.ts";
import { replaceObject } from "../store/replace-object.ts";
import { S3Store } from "../store/s3.ts";
import { PartCopyUnsupported, rewriteHeadByPartCopy, worthPartCopy } from "../store/s3-part-copy.ts";
import { isAlreadyExists, retentionLabel, type Store } from "../store/store.ts";
import type { PublicRecipient } from "./rekey-recipients.ts";

// Finishing or undoing a killed rekey is the journal's business (prune does it too); rekey runs it first.
export { recoverInterruptedRekey } from "../catalog/rekey-journal.ts";

/**
 * TEST ONLY: the name of a step after which the process kills itself with SIGKILL (see STEPS), for the crash
 * tests (test/e2e/rekey-crash.test.ts). Never set it otherwise.
 */
export const TEST_REKEY_KILL_ENV = "ETCD_BACKUP_TEST_REKEY_KILL_AT";
/** The points a rekey can be killed at by the test hook, in order. */
export const REKEY_STEPS = [
  "header",
  "staged",
  "verified",
  "journal",
  "replaced",
  "manifest",
  "done",
] as const;
export type RekeyStep = (typeof REKEY_STEPS)[number];

function reached(step: RekeyStep): void {
  if (process.env[TEST_REKEY_KILL_ENV] === step) process.kill(process.pid, "SIGKILL");
}

/** One object to rekey and what its manifest says about it. */
export interface RekeyTarget {
  key: string;
  manifestKey: string;
  /** The recipients the manifest names. */
  recipients: PublicRecipient[];
  /** sha256 of the stored object as the manifest records it (backups); absent for log segments. */
  objectSha256?: string;
  /** The run that wrote the object (S3 owner metadata to keep). */
  owner?: string;
  /** The manifest text after the rekey, from the new object's size and sha256 and the new recipients. */
  updatedManifest(object: { size: number; sha256: string }, recipients: PublicRecipient[]): string;
}

export interface RekeyOptions {
  store: Store;
  identities: Identity[];
  recipients: Recipient[];
  signal?: AbortSignal;
  /** Said once per process: the S3 service lacks part copy, the payload goes through this machine. */
  notice?: (line: string) => void;
  /** S3 sizes (tests make them small). */
  partCopy?: { firstPartSize?: number; copyPartSize?: number };
}

export interface RekeyOutcome {
  key: string;
  headerBefore: number;
  headerAfter: number;
  size: number;
  sha256: string;
  /** How the rewritten object was stored. */
  method: "streamed" | "part copy";
  /** Bytes of the object this process uploaded (part copy: the first part; streamed: all). */
  sentBytes: number;
}

let toldNoPartCopy = false;

/** The most bytes read to find a header: age's limit on its size, and one more. */
const MAX_HEADER_READ = (1 << 20) + 1;

/** Whether `prefix` holds a header's last line (its MAC line: no stanza line starts with "---"). */
function holdsMacLine(prefix: Buffer): boolean {
  return prefix.includes("\n--- ");
}

/** The old header of `key` and the file key under it, or a one-line error naming why not. */
export async function openObjectHeader(
  store: Store,
  target: RekeyTarget,
  identities: Identity[],
): Promise<{ header: Buffer; fileKey: Uint8Array; stanzas: number }> {
  let opened: Awaited<ReturnType<typeof readHeaderFrom>>;
  try {
    // Headers are small (one stanza is 100 to 2,000 bytes): one short read, a longer one for many recipients.
    let prefix = await readPrefix(store, target.key, 64 * 1024);
    if (prefix.length === 64 * 1024 && !holdsMacLine(prefix))
      prefix = await readPrefix(store, target.key, MAX_HEADER_READ);
    opened = await readHeaderFrom(
      (async function* () {
        yield prefix;
      })(),
    );
  } catch (err) {
    if (!(err instanceof AgeDecryptError)) throw err;
    throw new Hinted(`${target.key} cannot be rekeyed: ${err.message}`, "check it with `etcd-backup verify`");
  }
  const stanzas = opened.header.stanzas.length;
  if (stanzas !== target.recipients.length) {
    // Each recipient kind we write puts one stanza: a different count means the manifest does not say who
    // can read the object, and rewrapping for the manifest's list could lock someone out.
    throw new Hinted(
      `${target.key} has ${stanzas} recipient stanza(s) but its manifest names ${target.recipients.length} recipient(s)`,
      "rekey refuses rather than drop a reader it cannot name; verify the backup",
    );
  }
  try {
    return { header: opened.bytes, fileKey: await unwrapFileKey(opened.header, identities), stanzas };
  } catch (err) {
    if (err instanceof AgeDecryptError && err.failure === "no-match")
      throw new Hinted(
        `no identity given opens ${target.key}`,
        "pass --identity with a key the backup is encrypted to",
      );
    if (err instanceof AgeDecryptError)
      throw new Hinted(
        `${target.key} cannot be rekeyed: ${err.message}`,
        "check it with `etcd-backup verify`",
      );
    throw err;
  }
}

/** Rekeys one object (the steps in the module comment). The caller has run `recoverInterruptedRekey`. */
export async function rekeyObject(target: RekeyTarget, o: RekeyOptions): Promise<RekeyOutcome> {
  const { store, signal } = o;
  const run = randomBytes(8).toString("hex");
  const staging = stagingKey(target.key, run);
  await removeStaging(store, target.key); // leftovers of rekeys killed before their journal
  const { header: oldHeader, fileKey } = await openObjectHeader(store, target, o.identities);
  const newHeader = await rewrapHeader(fileKey, o.recipients);
  const before = await store.stat(target.key);
  if (!before) throw new Error(`${target.key} disappeared`);
  // The locks the new versions take over (S3 Object Lock); nothing elsewhere.
  const objectLock = await keptLock(store, target.key);
  const manifestLock = await keptLock(store, target.manifestKey);
  // Google Cloud Storage refuses to replace a held object (there is no new version beside the locked one, as on
  // S3): before writing anything, the object is left as it is, under its old recipients, and the run says why.
  const held = objectLock ?? manifestLock;
  if (held && store instanceof GcsStore) {
    const when = held.legalHold
      ? "once the hold is lifted and any retention has ended"
      : `after ${held.retainUntil?.toISOString().slice(0, 10)}`;
    throw new Hinted(
      `${objectLock ? target.key : target.manifestKey} is held (${retentionLabel(held)}) and Google Cloud Storage does not let a held object be replaced: it keeps its old recipients`,
      `rekey it ${when}; until then the old keys still open it`,
    );
  }
  reached("header");

  let method: RekeyOutcome["method"] = "streamed";
  let sentBytes = 0;
  const newSize = before.size - oldHeader.length + newHeader.length;
  let manifest: string;
  let sha256: string;
  try {
    if (store instanceof S3Store && worthPartCopy(newSize, o.partCopy?.firstPartSize)) {
      try {
        const done = await rewriteHeadByPartCopy(store, {
          source: target.key,
          target: staging,
          head: newHeader,
          skip: oldHeader.length,
          ...(target.owner ? { owner: target.owner } : {}),
          ...(signal ? { signal } : {}),
          ...(o.partCopy ?? {}),
        });
        method = "part copy";
        sentBytes = done.sentBytes;
      } catch (err) {
        if (!(err instanceof PartCopyUnsupported)) throw err;
        if (!toldNoPartCopy) {
          toldNoPartCopy = true;
          o.notice?.(
            `note: ${err.message}; rekey streams the payload through this machine instead (it is not decrypted)`,
          );
        }
      }
    }
    if (method === "streamed") {
      const body = Readable.from(withNewHead(newHeader, await store.get(target.key), oldHeader.length));
      const put = await store.put(staging, body, {
        contentType: "application/octet-stream",
        ...(target.owner ? { owner: target.owner } : {}),
        ...(signal ? { signal } : {}),
      });
      sentBytes = put.size;
    }
    reached("staged");

    const expectedOld = target.objectSha256 ?? (await hashObject(store, target.key));
    const checked = await verifyRewritten(store, staging, { fileKey, oldHeader, newHeader, expectedOld });
    if (checked.size !== newSize) {
      throw new Error(`the rewritten object is ${checked.size} bytes, ${newSize} were expected`);
    }
    reached("verified");

    sha256 = checked.sha256;
    manifest = target.updatedManifest(
      { size: checked.size, sha256: checked.sha256 },
      o.recipients.map((r) => ({ kind: r.kind, ...(r.publicKey ? { publicKey: r.publicKey } : {}) })),
    );
    const journal: RekeyJournal = {
      format: 1,
      kind: "rekey",
      run,
      started: new Date().toISOString(),
      from: { ...headerDigest(oldHeader), objectSize: before.size },
      to: { ...headerDigest(newHeader), objectSize: checked.size, objectSha256: checked.sha256 },
      manifest: JSON.parse(manifest),
    };
    try {
      await store.put(
        journalKey(target.key),
        Readable.from([Buffer.from(`${JSON.stringify(journal, null, 2)}\n`)]),
        { contentType: "application/json", ifAbsent: true },
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      throw new Hinted(
        `another rekey of ${target.key} is running (or was killed: its journal ${journalKey(target.key)} exists)`,
        "wait for it, or run rekey again to finish or undo a killed one",
      );
    }
  } catch (err) {
    await store.delete(staging).catch(() => {});
    throw err;
  }
  reached("journal");

  // From here the journal tells readers (and a later rekey) which manifest describes the object.
  await replaceObject(store, staging, target.key, {
    ...(target.owner ? { owner: target.owner } : {}),
    ...(signal ? { signal } : {}),
    ...(objectLock ? { retention: objectLock } : {}),
    onStreamed: (why) => o.notice?.(`note: ${why}; the rewritten object is copied through this machine`),
  });
  reached("replaced");
  const after = await store.stat(target.key);
  const head = await readPrefix(store, target.key, newHeader.length);
  if (after?.size !== newSize || !head.equals(newHeader)) {
    throw new Hinted(
      `${target.key} does not hold the rewritten object after it was moved into place`,
      `keep ${journalKey(target.key)}; run rekey again, then verify the backup`,
    );
  }
  await store.put(target.manifestKey, Readable.from([Buffer.from(manifest)]), {
    contentType: "application/json",
    ...(manifestLock ? { retention: manifestLock } : {}),
  });
  reached("manifest");
  await store.delete(journalKey(target.key));
  reached("done");
  if (objectLock) {
    const dated = objectLock.mode && objectLock.retainUntil;
    const until = dated
      ? `until then${objectLock.legalHold ? " and while the legal hold is on" : ""}`
      : "until the legal hold is lifted";
    o.notice?.(
      `note: the previous version of ${target.key} stays in ${store.location} under its lock (${retentionLabel(objectLock)}), ` +
        `readable by the old key ${until}; the new version is locked the same way`,
    );
  }
  return {
    key: target.key,
    headerBefore: oldHeader.length,
    headerAfter: newHeader.length,
    size: newSize,
    sha256,
    method,
    sentBytes,
  };
}

async function* withNewHead(head: Buffer, body: Readable, skip: number): AsyncGenerator<Buffer> {
  yield head;
  let left = skip;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
  if (left > 0) throw new Error("the object ended inside its header");
}

async function hashObject(store: Store, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of (await store.get(key)) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Reads the rewritten object once: its header must be `newHeader` and verify under the file key; the old header
 * followed by its payload must hash to `expectedOld` (the payload is unchanged). Returns its size and sha256.
 */
async function verifyRewritten(
  store: Store,
  key: string,
  v: { fileKey: Uint8Array; oldHeader: Buffer; newHeader: Buffer; expectedOld: string },
): Promise<{ size: number; sha256: string }> {
  const whole: Hash = createHash("sha256");
  const asOld: Hash = createHash("sha256").update(v.oldHeader);
  let head = Buffer.alloc(0);
  let size = 0;
  for await (const chunk of (await store.get(key)) as AsyncIterable<Buffer>) {
    size += chunk.length;
    whole.update(chunk);
    let payload = chunk;
    if (head.length < v.newHeader.length) {
      const need = v.newHeader.length - head.length;
      head = Buffer.concat([head, chunk.subarray(0, need)]);
      payload = chunk.subarray(need);
    }
    if (payload.length) asOld.update(payload);
  }
  if (!head.equals(v.newHeader)) throw new Error(`the rewritten ${key} does not start with the new header`);
  checkHeader(head, v.fileKey);
  const old = asOld.digest("hex");
  if (old !== v.expectedOld) {
    throw new Hinted(
      `the payload of the rewritten object differs from the original's (sha256 ${old} with the old header, expected ${v.expectedOld})`,
      "nothing was replaced; verify the backup: its object may not match its manifest",
    );
  }
  return { size, sha256: whole.digest("hex") };
}
