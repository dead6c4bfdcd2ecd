import { parseRecipient } from "../../age/index.ts";
import { describeError } from "../../errors.ts";
import { type EtcdBackupSpec, Reason, type S3DestinationSpec } from "../api.ts";
import { SpecProblem } from "../resolve.ts";
import {
  COMPRESSION_ANNOTATION,
  RECIPIENTS_ANNOTATION,
  type SecretKeySelector,
  TALOS_API_VERSION,
  TALOS_CONTROL_PLANE_KIND,
  TALOS_KEY_PREFIX,
  type TalosEtcdBackup,
} from "./api.ts";

/**
 * A TalosEtcdBackup as the one backup description the operator runs (an EtcdBackup spec with a
 * controlPlaneRef), plus what that spec cannot say: the two credential selectors (they may name two Secrets) and
 * the folder of the Talos operator's key pattern. Pure: no API call.
 */
export interface TranslatedBackup {
  /** Always an S3 destination: the Talos operator writes to S3 only. */
  spec: EtcdBackupSpec & { destination: { s3: S3DestinationSpec } };
  /** The TalosControlPlane's name: the cluster name in the manifest and the folder of the key. */
  cluster: string;
  /** `talos-operator-etcd-backups/<control plane>`. */
  dir: string;
  credentials: { accessKeyId: SecretKeySelector; secretAccessKey: SecretKeySelector };
}

const invalid = (message: string) => new SpecProblem(Reason.InvalidSpec, message);
const isName = (v: unknown): v is string =>
  typeof v === "string" && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(v);

function selector(v: unknown, field: string): SecretKeySelector {
  const s = v as SecretKeySelector | undefined;
  if (!s || !isName(s.name) || typeof s.key !== "string" || s.key === "") {
    throw invalid(`${field}: give the name and key of a Secret in this namespace`);
  }
  return s;
}

/** Our opt-in annotations: age recipients and compression; absent, the plain `.db` the Talos operator writes. */
export function optIns(annotations: Record<string, string> | undefined): {
  recipients: string[];
  compression: "zstd" | "none";
} {
  const recipients = (annotations?.[RECIPIENTS_ANNOTATION] ?? "").split(/[\s,]+/).filter(Boolean);
  for (const [i, r] of recipients.entries()) {
    try {
      parseRecipient(r);
    } catch (err) {
      throw new SpecProblem(
        Reason.InvalidRecipient,
        `annotation ${RECIPIENTS_ANNOTATION}, recipient ${i + 1}: ${describeError(err)}`,
      );
    }
  }
  const compression = annotations?.[COMPRESSION_ANNOTATION] ?? "none";
  if (compression !== "zstd" && compression !== "none") {
    throw invalid(`annotation ${COMPRESSION_ANNOTATION}: ${JSON.stringify(compression)} is not zstd or none`);
  }
  return { recipients, compression };
}

/** Translates a TalosEtcdBackup; throws `SpecProblem` (InvalidSpec, InvalidRecipient) naming the field. */
export function translateBackup(b: Pick<TalosEtcdBackup, "metadata" | "spec">): TranslatedBackup {
  const spec = b.spec ?? ({} as TalosEtcdBackup["spec"]);
  const cp = spec.talosControlPlaneRef?.name;
  if (!isName(cp)) throw invalid("spec.talosControlPlaneRef.name: name the TalosControlPlane to back up");
  const s3 = spec.backupStorage?.s3;
  if (!s3) throw invalid("spec.backupStorage.s3: required");
  if (typeof s3.bucket !== "string" || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(s3.bucket)) {
    throw invalid("spec.backupStorage.s3.bucket: not a valid S3 bucket name");
  }
  if (typeof s3.region !== "string" || s3.region === "")
    throw invalid("spec.backupStorage.s3.region: required");
  if (s3.endpoint !== undefined && !/^https?:\/\/[^\s/]+(\/.*)?$/.test(s3.endpoint)) {
    throw invalid("spec.backupStorage.s3.endpoint: use https://host[:port]");
  }
  const credentials = {
    accessKeyId: selector(s3.accessKeyID, "spec.backupStorage.s3.accessKeyID"),
    secretAccessKey: selector(s3.secretAccessKey, "spec.backupStorage.s3.secretAccessKey"),
  };
  const { recipients, compression } = optIns(b.metadata.annotations);
  return {
    cluster: cp,
    dir: `${TALOS_KEY_PREFIX}/${cp}`,
    credentials,
    spec: {
      clusterName: cp,
      source: {
        controlPlaneRef: { apiVersion: TALOS_API_VERSION, kind: TALOS_CONTROL_PLANE_KIND, name: cp },
      },
      destination: {
        s3: {
          bucket: s3.bucket,
          region: s3.region,
          ...(s3.endpoint
            ? // As the Talos operator: a custom endpoint is addressed path-style (MinIO and most S3-compatible stores).
              { endpoint: s3.endpoint, pathStyle: true }
            : {}),
          ...(s3.insecureSkipTLSVerify ? { insecureSkipVerify: true } : {}),
        },
      },
      encryption: recipients.length ? { recipients } : { none: true },
      compression,
    },
  };
}
