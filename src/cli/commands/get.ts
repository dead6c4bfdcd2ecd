import { type Command, Option } from "commander";
import { Hinted, UsageError } from "../../errors.ts";
import { findObject, getObject, readEncryptionConfig, renderObject } from "../../snapshot/index.ts";
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
  encryptionConfig?: string;
};

export function register(program: Command): void {
  const cmd = program
    .command("get")
    .description("one object out of a snapshot, as a manifest `kubectl apply` accepts")
    .argument("<snapshot>", "a snapshot file, or a backup name from `list` (or latest) with --to")
    .argument("[key]", "the etcd key, e.g. /registry/secrets/default/db-password");
  addSnapshotInputOptions(cmd);
  cmd
    .option(
      "--resource <resource>",
      "instead of KEY: the resource as inspect names it (secrets, configmaps...)",
    )
    .option("-n, --namespace <ns>", "with --resource: the namespace (omit for cluster-scoped objects)")
    .option("--name <name>", "with --resource: the object's name")
    .option(
      "--encryption-config <file>",
      "the apiserver's EncryptionConfiguration, to decrypt values encrypted at rest",
    )
    .addOption(
      new Option("-o, --output <format>", "yaml, json or raw")
        .choices(["yaml", "json", "raw"])
        .default("yaml"),
    )
    .action(async (arg: string, key: string | undefined, flags: GetFlags) => {
      if (!key && !(flags.resource && flags.name)) {
        throw new UsageError("no object named", "give KEY, or --resource R [--namespace NS] --name N");
      }
      const encryption = flags.encryptionConfig
        ? await readEncryptionConfig(flags.encryptionConfig)
        : undefined;
      const { snapshot } = await openProvenSnapshotInput(arg, flags);
      try {
        const db = openDb(snapshot);
        try {
          const opts = encryption ? { encryption } : {};
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
          const out = renderObject(stored, flags.output);
          process.stdout.write(out);
        } finally {
          db.close();
        }
      } finally {
        await snapshot.dispose();
      }
    });
}
