import type { Command } from "commander";
import { resolveBackup } from "../../catalog/catalog.ts";
import { UsageError } from "../../errors.ts";
import { addDecryptOptions, type DecryptFlags, decryptionFromFlags } from "../encryption-options.ts";
import { removeLeftovers } from "../leftovers.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";

type RestoreConfigFlags = StoreFlags & DecryptFlags & { target?: string; force?: boolean; cluster?: string };

export function register(program: Command): void {
  const cmd = program
    .command("restore-config")
    .description(
      "unpack a config archive (a name from `list`, or `latest`) under a directory, keeping modes and, as root, owners",
    )
    .argument("<backup>", "config archive name as `list` prints it, or latest");
  addStoreOptions(cmd);
  addDecryptOptions(cmd);
  cmd
    .option("--target <dir>", "directory to restore under (/ puts the files back where they were)")
    .option("--force", "overwrite existing files and symlinks")
    .option("--cluster <name>", "with latest: only this cluster's archives")
    .action(async (backup: string, flags: RestoreConfigFlags) => {
      if (!flags.target)
        throw new UsageError(
          "no --target given",
          "pass --target DIR (an empty directory, or / to restore in place)",
        );
      const store = storeFromFlags(flags);
      const entry = await resolveBackup(store, backup, {
        kind: "config",
        ...(flags.cluster ? { cluster: flags.cluster } : {}),
      });
      if (entry.kind !== "config") {
        throw new UsageError(
          `${entry.key} is a snapshot, not a config archive`,
          "use `etcd-backup restore` for snapshots",
        );
      }
      const decrypt = await decryptionFromFlags(flags);
      await removeLeftovers([flags.target]);
      const { signal, dispose } = abortOnSignals();
      try {
        const { restoreConfigArchive } = await import("../../config-archive/extract.ts");
        const result = await restoreConfigArchive({
          store,
          entry,
          target: flags.target,
          force: flags.force ?? false,
          ...(decrypt ? { decrypt } : {}),
          signal,
        });
        process.stdout.write(
          `restored ${entry.key} under ${result.target}: ${result.files} files, ${result.directories} directories, ${result.symlinks} symlinks` +
            (result.replaced > 0 ? `, ${result.replaced} replaced` : "") +
            "\n",
        );
      } finally {
        dispose();
      }
    });
}
