/**
 * Reading etcd snapshots without etcd, the layers bottom up: the bbolt file format (src/bbolt), etcd's MVCC
 * model of revisions, status and the snapshot trailer (src/mvcc), Kubernetes keys, objects and at-rest
 * decryption (src/kubernetes); this folder holds the views built on them (get, inspect, diff) and is the
 * one import the front ends need.
 */

export { type Finding, renderFindings } from "../bbolt/check.ts";
export { BoltDb, type Bucket, type Entry } from "../bbolt/db.ts";
export {
  decryptValue,
  type EncryptionKeys,
  parseEncryptionConfig,
  readEncryptionConfig,
} from "../kubernetes/at-rest/encryption-config.ts";
export { type KubernetesKey, kubernetesKey, parseKubernetesKey } from "../kubernetes/key.ts";
export {
  cleanObject,
  type DecodedObject,
  decodeObject,
  type KubernetesObject,
  SCHEMA_RELEASE,
  toManifest,
} from "../kubernetes/object.ts";
export { renderObjects, toJson, toYaml } from "../kubernetes/render.ts";
export {
  compactionRevisions,
  type Lease,
  type LiveKey,
  leases,
  type MvccState,
  mvccState,
} from "../mvcc/key-values.ts";
export { checkSnapshot, checkSnapshotFile } from "../mvcc/snapshot-check.ts";
export { renderStatus, type SnapshotStatus, snapshotFileStatus, snapshotStatus } from "../mvcc/status.ts";
export { diffSnapshots, type KeyChange, renderDiff, type SnapshotDiff } from "./diff.ts";
export {
  decodeStored,
  findObject,
  getObject,
  getObjects,
  listObjects,
  type ObjectSelection,
  type RenderOptions,
  renderObject,
  renderStoredObjects,
  type StoredObject,
  storedObjectJson,
} from "./get.ts";
export {
  DEFAULT_TOP,
  type InspectResult,
  inspectSnapshot,
  inspectSnapshotFile,
  renderInspect,
} from "./inspect.ts";
