/**
 * Reading etcd snapshots without etcd: a bbolt reader, etcdctl-compatible status, a structural check,
 * the MVCC and Kubernetes views (inspect, get, diff), and at-rest decryption.
 */

export { BoltDb, type Bucket, type Entry } from "./bbolt-db.ts";
export { checkSnapshot, checkSnapshotFile, type Finding, renderFindings } from "./check.ts";
export { diffSnapshots, type KeyChange, renderDiff, type SnapshotDiff } from "./diff.ts";
export {
  decryptValue,
  type EncryptionKeys,
  parseEncryptionConfig,
  readEncryptionConfig,
} from "./encryption-config.ts";
export {
  decodeStored,
  findObject,
  getObject,
  getObjects,
  renderObject,
  type StoredObject,
} from "./get.ts";
export {
  DEFAULT_TOP,
  type InspectResult,
  inspectSnapshot,
  inspectSnapshotFile,
  renderInspect,
} from "./inspect.ts";
export { type KubernetesKey, kubernetesKey, parseKubernetesKey } from "./kubernetes-key.ts";
export { type DecodedObject, decodeObject, type KubernetesObject, toManifest } from "./kubernetes-object.ts";
export { compactionRevisions, type Lease, type LiveKey, leases, type MvccState, mvccState } from "./mvcc.ts";
export { renderStatus, type SnapshotStatus, snapshotFileStatus, snapshotStatus } from "./status.ts";
