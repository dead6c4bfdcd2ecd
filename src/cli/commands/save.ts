import { type Command, Option } from "commander";
import { saveBackup } from "../../backup/save.ts";
import { isValidClusterName } from "../../catalog/names.ts";
import { UsageError } from "../../errors.ts";
import { FileSource } from "../../source/file.ts";
import { parseCompression, parseLevel } from "../../stages/compress.ts";
import { addEncryptOptions, type EncryptFlags, encryptionPlanFromFlags } from "../encryption-options.ts";
import { addEtcdOptions, type EtcdFlags, etcdSourceFromFlags } from "../etcd-options.ts";
import { ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { addStoreOptions, type StoreFlags, storeFromFlags } from "../store-options.ts";
import { addSourceOption, addTalosOptions, saveInputFromFlags, type TalosFlags } from "../talos-options.ts";
import { formatBytes } from "../units.ts";

type SaveFlags = EtcdFlags &
  EncryptFlags &
  TalosFlags & { source?: string } & StoreFlags & {
    cluster: string;
    compress: string;
    level?: string;
    output: string;
    fromFile?: string;
  };

export function register(program: Command): void {
  const cmd = program
    .command("save")
    .description(
      "stream a snapshot from etcd (or the Talos API), check it, compress, encrypt and store it with a manifest",
    );
  addEtcdOptions(cmd);
  addStoreOptions(cmd);
  addEncryptOptions(cmd);
  addSourceOption(cmd);
  addTalosOptions(cmd, { nodes: true, longEndpoints: false });
  cmd
    .addOption(
      new Option("--cluster <name>", "cluster name used in the backup's name")
        .env("CLUSTER_NAME")
        .default("etcd"),
    )
    .addOption(new Option("--compress <kind>", "zstd or none").env("ETCD_BACKUP_COMPRESS").default("zstd"))
    .addOption(new Option("--level <n>", "zstd level 1-19 (default 3)").env("ETCD_BACKUP_LEVEL"))
    .option(
      "--from-file <snapshot>",
      "store an existing snapshot file (etcdctl snapshot save output) instead of reading etcd",
    )
    .addOption(
      new Option("-o, --output <format>", "text or json (the manifest)")
        .choices(["text", "json"])
        .default("text"),
    )
    .action(async (given: SaveFlags) => {
      // Source choice (etcd or Talos) and talos-backup's environment; see saveInputFromFlags.
      const input = await saveInputFromFlags(cmd, given);
      const flags = input.flags;
      if (!isValidClusterName(flags.cluster)) {
        throw new UsageError(
          `cluster name ${JSON.stringify(flags.cluster)} cannot stand in a backup name`,
          "use letters, digits, '.', '_' and '-'",
        );
      }
      const warn = (line: string) => process.stderr.write(`${line}\n`);
      const compression = parseCompression(flags.compress);
      const level = flags.level !== undefined ? parseLevel(flags.level) : undefined;
      const encryption = await encryptionPlanFromFlags(flags);
      const store = input.store ?? storeFromFlags(flags);
      const source = flags.fromFile
        ? new FileSource(flags.fromFile)
        : (input.source ?? etcdSourceFromFlags(flags, warn));
      const progress = new ProgressBar("saving");
      const { signal, dispose } = abortOnSignals();
      try {
        const result = await saveBackup({
          source,
          store,
          cluster: flags.cluster,
          compression,
          ...(level !== undefined ? { level } : {}),
          encryption,
          signal,
          onProgress: (bytes, total) => progress.update(bytes, total),
        });
        progress.done();
        const m = result.manifest;
        if (flags.output === "json") {
          process.stdout.write(
            `${JSON.stringify({ key: result.key, location: store.location, manifest: m }, null, 2)}\n`,
          );
        } else {
          process.stdout.write(
            `saved ${result.key} to ${store.location}: ${formatBytes(m.sizes.plain)} snapshot, ${formatBytes(m.sizes.stored)} stored` +
              ` (${m.compression.kind}, ${m.encryption.kind === "age" ? "age-encrypted" : "NOT encrypted"}) in ${m.durationSeconds.toFixed(1)}s\n`,
          );
        }
      } finally {
        progress.done();
        dispose();
      }
    });
}
