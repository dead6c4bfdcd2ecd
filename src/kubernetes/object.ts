import { Hinted } from "../errors.ts";
import { ProtoReader } from "../protobuf/reader.ts";
import { parseEncryptionPrefix } from "./at-rest/encrypted-value.ts";

/**
 * Kubernetes objects as the apiserver stores them in etcd: JSON (custom resources, and anything written
 * with the JSON storage media type), or protobuf behind the magic `k8s\0`, wrapping runtime.Unknown
 * {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}. `raw` is the typed object
 * whose field 1 is always ObjectMeta. Field numbers are those of k8s.io/apimachinery and k8s.io/api
 * generated.proto. Every kind gets TypeMeta and ObjectMeta; Secret, ConfigMap, Namespace and
 * ServiceAccount are decoded whole.
 */

/** A decoded object, shaped as the apiserver's JSON for the fields decoded. */
export type KubernetesObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
};

/** The result of decoding a stored value. */
export interface DecodedObject {
  encoding: "json" | "protobuf";
  object: KubernetesObject;
  /** False when only TypeMeta and ObjectMeta could be decoded (protobuf of a kind not known here). */
  complete: boolean;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Kinds decoded whole from protobuf, by their core/v1 field layout. */
const FULL_KINDS = new Set(["Secret", "ConfigMap", "Namespace", "ServiceAccount"]);

/**
 * Decodes a stored (already decrypted) value. Throws a Hinted error for a value still encrypted at rest,
 * and an error for bytes that are neither JSON nor Kubernetes protobuf.
 */
export function decodeObject(value: Uint8Array): DecodedObject {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  const enc = parseEncryptionPrefix(buf);
  if (enc) {
    throw new Hinted(
      `value is encrypted at rest (provider ${enc.provider}, key ${enc.keyName})`,
      "pass the apiserver's EncryptionConfiguration to decrypt it",
    );
  }
  if (buf.length >= 4 && buf.subarray(0, 4).equals(MAGIC)) return decodeProtobuf(buf);
  const text = buf.toString("utf8").trim();
  if (text.startsWith("{")) {
    try {
      return { encoding: "json", object: JSON.parse(text) as KubernetesObject, complete: true };
    } catch (cause) {
      throw new Error("value is not valid JSON", { cause });
    }
  }
  throw new Error("value is neither JSON nor Kubernetes protobuf");
}

function decodeProtobuf(buf: Buffer): DecodedObject {
  let apiVersion = "";
  let kind = "";
  let raw: ProtoReader | null = null;
  const r = new ProtoReader(buf, 4);
  while (r.next()) {
    if (r.field === 1 && r.wireType === 2) {
      const t = r.message();
      while (t.next()) {
        if (t.field === 1) apiVersion = t.string();
        if (t.field === 2) kind = t.string();
      }
    } else if (r.field === 2 && r.wireType === 2) raw = r.message();
    else if (r.field === 3 && r.wireType === 2 && r.length > 0)
      throw new Error(`unsupported content encoding ${r.string()}`);
  }
  const object: KubernetesObject = { apiVersion, kind };
  if (!raw) return { encoding: "protobuf", object, complete: true };
  const full = FULL_KINDS.has(kind) && (apiVersion === "v1" || apiVersion === "");
  const fields: Record<string, unknown> = {};
  while (raw.next()) {
    if (raw.field === 1 && raw.wireType === 2) object.metadata = objectMeta(raw.message());
    else if (full) decodeKindField(kind, raw, fields);
  }
  Object.assign(object, fields);
  return { encoding: "protobuf", object, complete: full };
}

function decodeKindField(kind: string, r: ProtoReader, out: Record<string, unknown>): void {
  switch (kind) {
    case "Secret":
      if (r.field === 2) mapEntry(r, record(out, "data"), "base64");
      else if (r.field === 3) out.type = r.string();
      else if (r.field === 4) mapEntry(r, record(out, "stringData"), "utf8");
      else if (r.field === 5) out.immutable = r.value !== 0;
      break;
    case "ConfigMap":
      if (r.field === 2) mapEntry(r, record(out, "data"), "utf8");
      else if (r.field === 3) mapEntry(r, record(out, "binaryData"), "base64");
      else if (r.field === 4) out.immutable = r.value !== 0;
      break;
    case "Namespace":
      if (r.field === 2) {
        const spec: Record<string, unknown> = {};
        const s = r.message();
        while (s.next()) if (s.field === 1) list(spec, "finalizers").push(s.string());
        out.spec = spec;
      } else if (r.field === 3) {
        const status: Record<string, unknown> = {};
        const s = r.message();
        while (s.next()) if (s.field === 1) status.phase = s.string();
        out.status = status;
      }
      break;
    case "ServiceAccount":
      if (r.field === 2) list(out, "secrets").push(objectReference(r.message()));
      else if (r.field === 3) list(out, "imagePullSecrets").push(strings(r.message(), { 1: "name" }));
      else if (r.field === 4) out.automountServiceAccountToken = r.value !== 0;
      break;
  }
}

/** The map field `name` of `o`, created on first use (repeated map entries accumulate). */
function record(o: Record<string, unknown>, name: string): Record<string, string> {
  o[name] ??= {};
  return o[name] as Record<string, string>;
}

/** The list field `name` of `o`, created on first use (repeated fields accumulate). */
function list(o: Record<string, unknown>, name: string): unknown[] {
  o[name] ??= [];
  return o[name] as unknown[];
}

/** Reads one map<string, string|bytes> entry (key=1, value=2) into `into`. */
function mapEntry(r: ProtoReader, into: Record<string, string>, encoding: "utf8" | "base64"): void {
  const e = r.message();
  let key = "";
  let value = "";
  while (e.next()) {
    if (e.field === 1) key = e.string();
    if (e.field === 2) value = e.bytes().toString(encoding);
  }
  into[key] = value;
}

/** Reads string fields by number into an object with the given JSON names. */
function strings(r: ProtoReader, names: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  while (r.next()) {
    const name = names[r.field];
    if (name && r.wireType === 2) out[name] = r.string();
  }
  return out;
}

function objectReference(r: ProtoReader): Record<string, string> {
  return strings(r, {
    1: "kind",
    2: "namespace",
    3: "name",
    4: "uid",
    5: "apiVersion",
    6: "resourceVersion",
    7: "fieldPath",
  });
}

/** metav1.Time {seconds=1, nanos=2} as the RFC 3339 text the apiserver writes (whole seconds). */
function time(r: ProtoReader): string {
  let seconds = 0;
  while (r.next()) if (r.field === 1) seconds = r.signed();
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function objectMeta(r: ProtoReader): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  const names: Record<number, string> = {
    1: "name",
    2: "generateName",
    3: "namespace",
    4: "selfLink",
    5: "uid",
    6: "resourceVersion",
  };
  while (r.next()) {
    const name = names[r.field];
    if (name) {
      m[name] = r.string();
      continue;
    }
    switch (r.field) {
      case 7:
        m.generation = r.signed();
        break;
      case 8:
        m.creationTimestamp = time(r.message());
        break;
      case 9:
        m.deletionTimestamp = time(r.message());
        break;
      case 10:
        m.deletionGracePeriodSeconds = r.signed();
        break;
      case 11:
        mapEntry(r, record(m, "labels"), "utf8");
        break;
      case 12:
        mapEntry(r, record(m, "annotations"), "utf8");
        break;
      case 13:
        list(m, "ownerReferences").push(ownerReference(r.message()));
        break;
      case 14:
        list(m, "finalizers").push(r.string());
        break;
      case 17:
        list(m, "managedFields").push(managedFields(r.message()));
        break;
    }
  }
  return m;
}

/** OwnerReference: kind=1, name=3, uid=4, apiVersion=5, controller=6, blockOwnerDeletion=7. */
function ownerReference(r: ProtoReader): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  while (r.next()) {
    if (r.field === 1) o.kind = r.string();
    else if (r.field === 3) o.name = r.string();
    else if (r.field === 4) o.uid = r.string();
    else if (r.field === 5) o.apiVersion = r.string();
    else if (r.field === 6) o.controller = r.value !== 0;
    else if (r.field === 7) o.blockOwnerDeletion = r.value !== 0;
  }
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.name, uid: o.uid, ...o };
}

/** ManagedFieldsEntry: manager=1, operation=2, apiVersion=3, time=4, fieldsType=6, subresource=8 (fieldsV1 left out). */
function managedFields(r: ProtoReader): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  while (r.next()) {
    if (r.field === 1) o.manager = r.string();
    else if (r.field === 2) o.operation = r.string();
    else if (r.field === 3) o.apiVersion = r.string();
    else if (r.field === 4) o.time = time(r.message());
    else if (r.field === 6) o.fieldsType = r.string();
    else if (r.field === 8) o.subresource = r.string();
  }
  return o;
}

/** Metadata fields the apiserver sets; a manifest meant for `kubectl apply` leaves them out. */
const SERVER_SET = [
  "uid",
  "resourceVersion",
  "creationTimestamp",
  "managedFields",
  "selfLink",
  "generation",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
];

/**
 * A manifest `kubectl apply` accepts: apiVersion, kind, metadata without server-set fields, the rest of
 * the object without `status`. Does not modify `object`.
 */
export function toManifest(object: KubernetesObject): KubernetesObject {
  const { apiVersion, kind, metadata, status: _status, ...rest } = object;
  const meta: Record<string, unknown> = { ...(metadata ?? {}) };
  for (const f of SERVER_SET) delete meta[f];
  return { apiVersion, kind, metadata: meta, ...rest };
}
