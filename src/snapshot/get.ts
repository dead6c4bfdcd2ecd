import type { BoltDb } from "../bbolt/db.ts";
import { parseEncryptionPrefix } from "../kubernetes/at-rest/encrypted-value.ts";
import { decryptValue, type EncryptionKeys } from "../kubernetes/at-rest/encryption-config.ts";
import { kubernetesKey, parseKubernetesKey, REGISTRY_PREFIX } from "../kubernetes/key.ts";
import {
  cleanObject,
  type DecodedObject,
  decodeObject,
  type KubernetesObject,
  RAW_BODY,
  SCHEMA_RELEASE,
  UNKNOWN_FIELDS,
} from "../kubernetes/object.ts";
import { renderObjects, toJson, toYaml } from "../kubernetes/render.ts";
import { type LiveKey, ownedKeyValue, replayLiveKeys } from "../mvcc/key-values.ts";

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

/** How objects are printed: `clean` leaves out what the server sets (see cleanObject), for `kubectl apply`. */
export interface RenderOptions {
  clean?: boolean;
}

/**
 * The object a stored value holds, as the apiserver returns it (faithful: everything stored, and
 * metadata.resourceVersion set to the key's mod revision, as the apiserver sets it on every read: the stored
 * bytes leave it empty), or cleaned for `kubectl apply`. `dropped` says what cleaning left out that was not server-set (unknown fields);
 * `notes` what the schema could not name (shown under UNKNOWN_FIELDS or RAW_BODY in the object).
 */
export function storedObjectJson(
  stored: StoredObject,
  options: RenderOptions = {},
): { object: KubernetesObject; dropped: string[]; notes: string[] } {
  const decoded = decodeStored(stored);
  const notes: string[] = [];
  if (!decoded.complete) {
    notes.push(
      decoded.unknownFields > 0
        ? `${stored.key}: ${decoded.unknownFields} field(s) unknown to the schema of Kubernetes ${SCHEMA_RELEASE} (a newer release wrote it?), kept under ${UNKNOWN_FIELDS}`
        : `${stored.key}: ${decoded.object.apiVersion} ${decoded.object.kind} is not in the schema of Kubernetes ${SCHEMA_RELEASE}; its body is kept under ${RAW_BODY}`,
    );
  }
  if (options.clean) return { ...cleanObject(decoded.object), notes: [] };
  const { metadata } = decoded.object;
  if (metadata && typeof metadata === "object" && !Array.isArray(metadata)) {
    metadata.resourceVersion = String(stored.modRevision);
  }
  return { object: decoded.object, dropped: [], notes };
}

/**
 * Renders a stored object: `raw` is the value bytes (decrypted when they were); `yaml` and `json` are the
 * object as `kubectl get -o yaml|json` shows it (keys sorted), everything stored unless `clean`. Throws,
 * naming the provider and key, when the value is still encrypted, and when it is not a Kubernetes object
 * (use `raw` then).
 */
export function renderObject(
  stored: StoredObject,
  format: "yaml" | "json" | "raw",
  options: RenderOptions = {},
): Buffer | string {
  if (format === "raw") return stored.value;
  const { object } = storedObjectJson(stored, options);
  return format === "json" ? toJson(object) : toYaml(object);
}

/** Which objects `listObjects` returns: one resource's, one namespace's, or both. */
export interface ObjectSelection {
  /** The resource as inspect names it; all resources when absent. */
  resource?: string;
  /** The namespace; with no resource, the Namespace object itself comes first. All when absent. */
  namespace?: string;
}

/**
 * The live objects under /registry/ that `selection` picks, in key order (the Namespace object first when
 * one namespace is selected across resources). Values are copies, valid after the database is closed.
 */
export function listObjects(
  db: BoltDb,
  selection: ObjectSelection,
  options: { encryption?: EncryptionKeys } = {},
): StoredObject[] {
  const { resource, namespace } = selection;
  const prefix = resource
    ? namespace !== undefined
      ? kubernetesKey(resource, namespace, "")
      : kubernetesKey(resource, "", "")
    : REGISTRY_PREFIX;
  const namespaceKey = !resource && namespace ? kubernetesKey("namespaces", "", namespace) : null;
  const picks = (key: string): boolean => {
    if (key === namespaceKey) return true;
    const parsed = parseKubernetesKey(key);
    if (!parsed) return false;
    if (resource && parsed.resource !== resource) return false;
    return namespace === undefined || parsed.namespace === namespace;
  };
  const state = replayLiveKeys(db, { prefix }, (kv) => {
    const key = kv.key.toString("utf8");
    return picks(key) ? { key, kv: ownedKeyValue(kv) } : null;
  });
  const found: StoredObject[] = [];
  for (const entry of state.keys.values()) {
    if (entry) found.push(storedObject(entry.key, entry.kv, options.encryption));
  }
  found.sort((a, b) => (a.key === namespaceKey ? -1 : b.key === namespaceKey ? 1 : a.key < b.key ? -1 : 1));
  return found;
}

/**
 * Several stored objects as one document: a JSON `List`, or YAML documents separated by `---`. The ones
 * that cannot be decoded (still encrypted, not Kubernetes objects) are returned in `failed`, not printed.
 */
export function renderStoredObjects(
  stored: StoredObject[],
  format: "yaml" | "json",
  options: RenderOptions = {},
): { text: string; failed: { key: string; reason: string }[]; dropped: string[]; notes: string[] } {
  const objects: KubernetesObject[] = [];
  const failed: { key: string; reason: string }[] = [];
  const dropped: string[] = [];
  const notes: string[] = [];
  for (const s of stored) {
    try {
      const r = storedObjectJson(s, options);
      objects.push(r.object);
      for (const d of r.dropped) dropped.push(`${s.key}: ${d}`);
      notes.push(...r.notes);
    } catch (err) {
      failed.push({ key: s.key, reason: (err as Error).message });
    }
  }
  return { text: objects.length > 0 ? renderObjects(objects, format) : "", failed, dropped, notes };
}
