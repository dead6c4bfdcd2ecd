import { Hinted } from "../errors.ts";
import { LEN, ProtoReader } from "../protobuf/reader.ts";
import { parseEncryptionPrefix } from "./at-rest/encrypted-value.ts";
import {
  decodeMessage,
  type Json,
  parseJsonExact,
  setEmbeddedObjectDecoder,
  setOwn,
  UNKNOWN_FIELDS,
} from "./message.ts";
import { messageForKind, SCHEMA_RELEASE } from "./schema/index.ts";

/**
 * Kubernetes objects as the apiserver stores them in etcd: JSON (custom resources, and anything written
 * with the JSON storage media type), or protobuf behind the magic `k8s\0`, wrapping runtime.Unknown
 * {typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}. `raw` is the typed object,
 * decoded by the schema generated from the Kubernetes API definitions (schema/) into the JSON the apiserver
 * returns for it (message.ts says how).
 */

/** A decoded object, shaped as the apiserver's JSON. */
export type KubernetesObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown>;
};

/** The result of decoding a stored value. */
export interface DecodedObject {
  encoding: "json" | "protobuf";
  object: KubernetesObject;
  /**
   * False when the schema does not know the kind (the object then holds the envelope's apiVersion and kind
   * and the body's bytes under RAW_BODY) or some fields (listed under UNKNOWN_FIELDS where they were).
   */
  complete: boolean;
  /** How many fields the schema did not know (kept under UNKNOWN_FIELDS). */
  unknownFields: number;
}

/** Where an object of a kind without schema keeps its body's bytes (base64). */
export const RAW_BODY = "x-etcd-backup-raw";
export { SCHEMA_RELEASE, UNKNOWN_FIELDS };

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/**
 * Decodes a stored (already decrypted) value. Throws a Hinted error for a value still encrypted at rest,
 * and an error for bytes that are neither JSON nor Kubernetes protobuf.
 */
export function decodeObject(value: Uint8Array, options: DecodeOptions = {}): DecodedObject {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  const enc = parseEncryptionPrefix(buf);
  if (enc) {
    throw new Hinted(
      `value is encrypted at rest (provider ${enc.provider}, key ${enc.keyName})`,
      "pass the apiserver's EncryptionConfiguration to decrypt it",
    );
  }
  if (buf.length >= 4 && buf.subarray(0, 4).equals(MAGIC)) return decodeProtobuf(buf, options);
  const text = buf.toString("utf8").trim();
  if (text.startsWith("{")) {
    try {
      return {
        encoding: "json",
        object: parseJsonExact(text) as KubernetesObject,
        complete: true,
        unknownFields: 0,
      };
    } catch (cause) {
      throw new Error("value is not valid JSON", { cause });
    }
  }
  throw new Error("value is neither JSON nor Kubernetes protobuf");
}

/** How to decode a value whose envelope does not name its type (API watch events, some fixtures). */
export interface DecodeOptions {
  /** The group version and kind to decode the body as when the envelope's TypeMeta is empty. */
  typeWhenUnnamed?: { apiVersion: string; kind: string };
}

function decodeProtobuf(buf: Buffer, options: DecodeOptions): DecodedObject {
  let apiVersion = "";
  let kind = "";
  let raw: ProtoReader | null = null;
  let rawBytes: Buffer | null = null;
  const r = new ProtoReader(buf, 4);
  while (r.next()) {
    if (r.field === 1 && r.wireType === LEN) {
      const t = r.message();
      while (t.next()) {
        if (t.field === 1 && t.wireType === LEN) apiVersion = t.string();
        if (t.field === 2 && t.wireType === LEN) kind = t.string();
      }
    } else if (r.field === 2 && r.wireType === LEN) {
      raw = r.message();
      rawBytes = r.bytes();
    } else if (r.field === 3 && r.wireType === LEN && r.length > 0)
      throw new Error(`unsupported content encoding ${r.string()}`);
  }
  // TypeMeta is `omitempty` in every type.
  const object: KubernetesObject = {};
  if (apiVersion) object.apiVersion = apiVersion;
  if (kind) object.kind = kind;
  const named = apiVersion || kind ? { apiVersion, kind } : (options.typeWhenUnnamed ?? { apiVersion, kind });
  const message = messageForKind(named.apiVersion, named.kind);
  if (!message) {
    if (rawBytes) object[RAW_BODY] = rawBytes.toString("base64");
    return { encoding: "protobuf", object, complete: false, unknownFields: 0 };
  }
  const unknown = { count: 0 };
  const body = decodeMessage(message, raw ?? new ProtoReader(new Uint8Array(0)), unknown);
  if (body && typeof body === "object" && !Array.isArray(body)) Object.assign(object, body);
  return { encoding: "protobuf", object, complete: unknown.count === 0, unknownFields: unknown.count };
}

setEmbeddedObjectDecoder((bytes) => decodeObject(bytes).object as Json);

/** Metadata fields the apiserver sets; a manifest meant for `kubectl apply` leaves them out. */
export const SERVER_SET_METADATA = [
  "uid",
  "resourceVersion",
  "creationTimestamp",
  "generation",
  "managedFields",
  "selfLink",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
];

/**
 * The object as a manifest for `kubectl apply` (`--clean`): without what the server sets (the metadata in
 * SERVER_SET_METADATA, `status`), and without what cannot be applied (fields the schema did not know, the raw
 * body of a kind without schema); `dropped` lists those. Does not modify `object`.
 */
export function cleanObject(object: KubernetesObject): { object: KubernetesObject; dropped: string[] } {
  const dropped: string[] = [];
  const { apiVersion, kind, metadata, status: _status, ...rest } = object;
  const meta: Record<string, unknown> = { ...(metadata ?? {}) };
  for (const f of SERVER_SET_METADATA) delete meta[f];
  const cleaned: KubernetesObject = { apiVersion, kind, metadata: meta, ...rest };
  if (RAW_BODY in cleaned) {
    delete cleaned[RAW_BODY];
    dropped.push(
      `the body of ${apiVersion} ${kind}, a kind the schema of Kubernetes ${SCHEMA_RELEASE} does not know`,
    );
  }
  return { object: withoutUnknownFields(cleaned, "", dropped) as KubernetesObject, dropped };
}

function withoutUnknownFields(value: unknown, path: string, dropped: string[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => withoutUnknownFields(v, `${path}[${i}]`, dropped));
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === UNKNOWN_FIELDS) {
      const numbers = (v as { number: number }[]).map((f) => f.number).join(", ");
      dropped.push(`unknown field${numbers.includes(",") ? "s" : ""} ${numbers} of ${path || "the object"}`);
    } else setOwn(out, k, withoutUnknownFields(v, path ? `${path}.${k}` : k, dropped));
  }
  return out;
}

/** `cleanObject`'s object (kept for callers of the earlier name). */
export function toManifest(object: KubernetesObject): KubernetesObject {
  return cleanObject(object).object;
}
