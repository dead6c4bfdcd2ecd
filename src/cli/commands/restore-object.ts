import type { Command } from "commander";
import { Hinted, UsageError } from "../../errors.ts";
import { ApiServer } from "../../kubernetes/api-server.ts";
import { FIELD_MANAGER, restoreObject } from "../../kubernetes/restore-object.ts";
import { loadKubeConfig } from "../../operator/kube.ts";
import {
  decodeStored,
  type EncryptionKeys,
  findObject,
  getObject,
  type KubernetesObject,
  readEncryptionConfig,
} from "../../snapshot/index.ts";
import { abortOnSignals } from "../signals.ts";
import {
  addSnapshotInputOptions,
  openDb,
  openProvenSnapshotInput,
  type SnapshotInputFlags,
} from "../snapshot-input.ts";

type RestoreObjectFlags = SnapshotInputFlags & {
  resource?: string;
  namespace?: string;
  name?: string;
  kubeconfig?: string;
  context?: string;
  dryRun?: boolean;
  force?: boolean;
  encryptionConfig?: string;
};

export function register(program: Command): void {
  const cmd = program
    .command("restore-object")
    .description(
      `put one object from a backup back into a live cluster (server-side apply, field manager ${FIELD_MANAGER})`,
    )
    .argument("<snapshot>", "a snapshot file, or a backup name from `list` (or latest) with --to")
    .argument("[key]", "the etcd key, e.g. /registry/deployments/prod/web");
  addSnapshotInputOptions(cmd);
  cmd
    .option(
      "--resource <resource>",
      "instead of KEY: the resource as inspect names it (deployments, secrets...)",
    )
    .option("-n, --namespace <ns>", "with --resource: the namespace (omit for cluster-scoped objects)")
    .option("--name <name>", "with --resource: the object's name")
    .option("--kubeconfig <file>", "the cluster to restore into (default: KUBECONFIG, then ~/.kube/config)")
    .option("--context <name>", "the kubeconfig context to use (default: its current context)")
    .option("--dry-run", "have the API server validate the apply (dryRun=All) and change nothing")
    .option(
      "--force",
      "overwrite an object that exists and differs (and restore without fields the schema does not know)",
    )
    .option(
      "--encryption-config <file>",
      "the apiserver's EncryptionConfiguration, to decrypt values encrypted at rest",
    )
    .action(async (arg: string, key: string | undefined, flags: RestoreObjectFlags) => {
      if (key && (flags.resource || flags.name)) {
        throw new UsageError("KEY and --resource/--name both given", "give one way of naming the object");
      }
      if (!key && !(flags.resource && flags.name)) {
        throw new UsageError("no object named", "give KEY, or --resource R [-n NS] --name N");
      }
      const kubeconfig = loadKubeConfig(flags.kubeconfig);
      if (flags.context) kubeconfig.setCurrentContext(flags.context);
      const api = new ApiServer(kubeconfig);
      if (api.skipsTlsVerify && api.server.startsWith("https:")) {
        process.stderr.write(
          `etcd-backup: warning: the kubeconfig skips TLS verification for ${api.server}: anyone on the path can read the object\n`,
        );
      }
      const encryption = flags.encryptionConfig
        ? await readEncryptionConfig(flags.encryptionConfig)
        : undefined;
      const interrupt = abortOnSignals();
      try {
        const object = await readObject(arg, key, flags, encryption, interrupt.signal);
        const result = await restoreObject(api, object, {
          ...(flags.dryRun ? { dryRun: true } : {}),
          ...(flags.force ? { force: true } : {}),
          signal: interrupt.signal,
        });
        for (const w of result.warnings) process.stderr.write(`etcd-backup: warning: ${w}\n`);
        const how =
          result.action === "unchanged"
            ? "the cluster already holds the backup's version; nothing sent"
            : `server-side apply as ${FIELD_MANAGER}${flags.dryRun ? ", dry run: nothing changed" : ""}`;
        process.stdout.write(`${result.action} ${result.what} (${how})\n`);
      } finally {
        interrupt.dispose();
      }
    });
}

/** The object KEY (or --resource/-n/--name) names in the snapshot, decoded. */
async function readObject(
  arg: string,
  key: string | undefined,
  flags: RestoreObjectFlags,
  encryption: EncryptionKeys | undefined,
  signal: AbortSignal,
): Promise<KubernetesObject> {
  const { snapshot } = await openProvenSnapshotInput(arg, flags, signal);
  try {
    const db = openDb(snapshot);
    try {
      const opts = encryption ? { encryption } : {};
      const stored = key
        ? getObject(db, key, opts)
        : findObject(db, flags.resource!, flags.namespace ?? "", flags.name!, opts);
      const what = key ?? `${flags.resource} ${flags.namespace ? `${flags.namespace}/` : ""}${flags.name}`;
      if (!stored) {
        throw new Hinted(`${what} is not in the snapshot`, "list what is there with `etcd-backup inspect`");
      }
      return decodeStored(stored).object;
    } finally {
      db.close();
    }
  } finally {
    await snapshot.dispose();
  }
}
