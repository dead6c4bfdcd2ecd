import { type Command, Option } from "commander";
import { Hinted, UsageError } from "../../errors.ts";
import {
  findObject,
  getObject,
  listObjects,
  readEncryptionConfig,
  renderObjects,
  renderStoredObjects,
  storedObjectJson,
  toJson,
  toYaml,
} from "../../snapshot/index.ts";
import {
  addSnapshotInputOptions,
  openDb,
  openProvenSnapshotInput,
  type SnapshotInputFlags,
} from "../snapshot-input.ts";

type GetFlags = SnapshotInputFlags & {
  output: "yaml" | "json" | "raw";
  resource?: string;
  namespace?: string;
  name?: string;
  all?: boolean;
  clean?: boolean;
  encryptionConfig?: string;
};

export function register(program: Command): void {
  const cmd = program
    .command("get")
    .description(
      "objects out of a snapshot as the apiserver returns them (`kubectl get -o yaml`), or with --clean as manifests `kubectl apply` accepts",
    )
    .argument("<snapshot>", "a snapshot file, or a backup name from `list` (or latest) with --to")
    .argument("[key]", "the etcd key, e.g. /registry/deployments/default/web");
  addSnapshotInputOptions(cmd);
  cmd
    .option(
      "--resource <resource>",
      "instead of KEY: the resource as inspect names it (deployments, secrets...); without --name, all of them",
    )
    .option(
      "-n, --namespace <ns>",
      "with --resource or --all: the namespace (omit for cluster-scoped objects)",
    )
    .option("--name <name>", "with --resource: the object's name")
    .option(
      "--all",
      "every object (of the namespace with -n, the Namespace itself first), as one multi-document YAML",
    )
    .option(
      "--clean",
      "leave out what the server sets (uid, resourceVersion, creationTimestamp, generation, managedFields, selfLink, deletionTimestamp, status), for `kubectl apply`",
    )
    .option(
      "--encryption-config <file>",
      "the apiserver's EncryptionConfiguration, to decrypt values encrypted at rest",
    )
    .addOption(
      new Option("-o, --output <format>", "yaml, json (a List for several objects) or raw (one object)")
        .choices(["yaml", "json", "raw"])
        .default("yaml"),
    )
    .action(async (arg: string, key: string | undefined, flags: GetFlags) => {
      const many = flags.all || (flags.resource !== undefined && flags.name === undefined);
      if (key && (flags.resource || flags.all || flags.name)) {
        throw new UsageError("KEY and --resource/--all/--name both given", "give one way of naming objects");
      }
      if (!key && !flags.resource && !flags.all) {
        throw new UsageError(
          "no object named",
          "give KEY, --resource R [-n NS] [--name N], or --all [-n NS]",
        );
      }
      if (flags.all && (flags.resource || flags.name)) {
        throw new UsageError(
          "--all with --resource or --name",
          "--all takes every resource; use -n to pick a namespace",
        );
      }
      if (flags.name && !flags.resource)
        throw new UsageError("--name without --resource", "add --resource R");
      if (many && flags.output === "raw") {
        throw new UsageError(
          "-o raw prints one object",
          "name one with KEY or --resource R --name N, or use -o yaml",
        );
      }
      const encryption = flags.encryptionConfig
        ? await readEncryptionConfig(flags.encryptionConfig)
        : undefined;
      const { snapshot } = await openProvenSnapshotInput(arg, flags);
      try {
        const db = openDb(snapshot);
        try {
          const opts = encryption ? { encryption } : {};
          if (many) {
            const stored = listObjects(
              db,
              {
                ...(flags.resource ? { resource: flags.resource } : {}),
                ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
              },
              opts,
            );
            const format = flags.output as "yaml" | "json";
            const { text, failed, dropped, notes } = renderStoredObjects(stored, format, {
              clean: flags.clean === true,
            });
            process.stdout.write(text || (format === "json" ? renderObjects([], "json") : ""));
            if (stored.length === 0) {
              // As kubectl: nothing found is an empty answer, not a failure.
              const what = `${flags.resource ?? "objects"}${flags.namespace ? ` in namespace ${flags.namespace}` : ""}`;
              process.stderr.write(
                `etcd-backup: no ${what} in the snapshot (list what is there with \`etcd-backup inspect\`)\n`,
              );
            }
            warnDropped(dropped);
            for (const n of notes) process.stderr.write(`etcd-backup: note: ${n}\n`);
            if (failed.length > 0) {
              for (const f of failed) process.stderr.write(`etcd-backup: ${f.key}: ${f.reason}\n`);
              throw new Hinted(
                `${failed.length} of ${stored.length} objects could not be decoded (named above)`,
                failed.some((f) => /encrypted at rest/.test(f.reason))
                  ? "pass the apiserver's EncryptionConfiguration with --encryption-config"
                  : "read them one by one with -o raw",
              );
            }
            return;
          }
          const stored = key
            ? getObject(db, key, opts)
            : findObject(db, flags.resource!, flags.namespace ?? "", flags.name!, opts);
          const what =
            key ?? `${flags.resource} ${flags.namespace ? `${flags.namespace}/` : ""}${flags.name}`;
          if (!stored)
            throw new Hinted(
              `${what} is not in the snapshot`,
              "list what is there with `etcd-backup inspect`",
            );
          if (flags.output === "raw") {
            process.stdout.write(stored.value);
            return;
          }
          const { object, dropped, notes } = storedObjectJson(stored, { clean: flags.clean === true });
          process.stdout.write(flags.output === "json" ? toJson(object) : toYaml(object));
          warnDropped(dropped);
          for (const n of notes) process.stderr.write(`etcd-backup: note: ${n}\n`);
        } finally {
          db.close();
        }
      } finally {
        await snapshot.dispose();
      }
    });
}

function warnDropped(dropped: string[]): void {
  for (const d of dropped) process.stderr.write(`etcd-backup: warning: --clean left out ${d}\n`);
}
