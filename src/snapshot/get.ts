import type { BoltDb } from "../bbolt/db.ts";
import { parseEncryptionPrefix } from "../kubernetes/at-rest/encrypted-value.ts";
import { decryptValue, type EncryptionKeys } from "../kubernetes/at-rest/encryption-config.ts";
import { kubernetesKey } from "../kubernetes/key.ts";
import { type DecodedObject, decodeObject, toManifest } from "../kubernetes/object.ts";
import { type LiveKey, ownedKeyValue, replayLiveKeys } from "../mvcc/key-values.ts";
import { yaml } from "../yaml.ts";

/** One live key read from a snapshot, decrypted when possible and decoded when it is a Kubernetes object. */
export interface StoredObject {
  key: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease ID in decimal, "0" when none. */
  lease: string;
  /** The provider and key name when the value is encrypted at rest. */
  encryption?: { provider: string; keyName: string };
  /** The value: decrypted when a configuration was given, as stored otherwise. */
  value: Buffer;
  /** Whether `value` is plain (never encrypted, or decrypted). */
  plain: boolean;
}

/**
 * Reads the live value of `key` at the snapshot's revision; null when the key does not exist (never
 * written, deleted, or compacted away). With `encryption`, an encrypted value is decrypted (and throws
 * when it cannot be); without, it is returned as stored with `plain: false`.
 */
export function getObject(
  db: BoltDb,
  key: string,
  options: { encryption?: EncryptionKeys } = {},
): StoredObject | null {
  return getObjects(db, [key], options).get(key) ?? null;
}

/**
 * `getObject` for many keys in one pass over the database: the found ones by key (as given). The values
 * are copies, valid after the database is closed.
 */
export function getObjects(
  db: BoltDb,
  keys: string[],
  options: { encryption?: EncryptionKeys } = {},
): Map<string, StoredObject> {
  const wanted = new Map(keys.map((k) => [Buffer.from(k, "utf8").toString("latin1"), k]));
  // With one key, the walk skips other keys before decoding names; with many, every key is looked up.
  const prefix = keys.length === 1 ? { prefix: keys[0]! } : {};
  const state = replayLiveKeys(db, prefix, (kv) =>
    wanted.has(kv.key.toString("latin1")) ? ownedKeyValue(kv) : null,
  );
  const out = new Map<string, StoredObject>();
  for (const [name, key] of wanted) {
    const kv = state.keys.get(name);
    if (kv) out.set(key, storedObject(key, kv, options.encryption));
  }
  return out;
}

function storedObject(key: string, kv: LiveKey, encryption: EncryptionKeys | undefined): StoredObject {
  const prefix = parseEncryptionPrefix(kv.value);
  const out: StoredObject = {
    key,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease.toString(),
    value: kv.value,
    plain: prefix === null,
  };
  if (prefix) {
    out.encryption = { provider: prefix.provider, keyName: prefix.keyName };
    if (encryption) {
      out.value = decryptValue(kv.value, key, encryption);
      out.plain = true;
    }
  }
  return out;
}

/**
 * Looks an object up by resource, namespace ("" for cluster-scoped) and name, the resource named as
 * inspect names it (`secrets`, `customresourcedefinitions.apiextensions.k8s.io`).
 */
export function findObject(
  db: BoltDb,
  resource: string,
  namespace: string,
  name: string,
  options: { encryption?: EncryptionKeys } = {},
): StoredObject | null {
  return getObject(db, kubernetesKey(resource, namespace, name), options);
}

/** Decodes a stored object's value (see decodeObject for when it throws). */
export function decodeStored(stored: StoredObject): DecodedObject {
  return decodeObject(stored.value);
}

/**
 * Renders a stored object: `raw` is the value bytes (decrypted when they were); `yaml` and `json` are the
 * manifest `kubectl apply` accepts (see toManifest). Throws, naming the provider and key, when the value
 * is still encrypted, and when it is not a Kubernetes object (use `raw` then).
 */
export function renderObject(stored: StoredObject, format: "yaml" | "json" | "raw"): Buffer | string {
  if (format === "raw") return stored.value;
  const manifest = toManifest(decodeStored(stored).object);
  return format === "json" ? `${JSON.stringify(manifest, null, 2)}\n` : yaml().stringify(manifest);
}
