import { type Command, Option } from "commander";
import { resolveBackup } from "../../catalog/catalog.ts";
import { UsageError } from "../../errors.ts";
import { restoreToFile } from "../../restore/to-file.ts";
import { addDecryptOptions, type DecryptFlags, decryptionFromFlags } from "../encryption-options.ts";
import { ProgressBar } from "../progress.ts";
import { abortOnSignals } from "../signals.ts";
import { addStoreOptions, type StoreFlags, storeFromFlags } from "../store-options.ts";
import { formatBytes } from "../units.ts";

type RestoreFlags = StoreFlags &
  DecryptFlags & { toFile?: string; force?: boolean; before?: string; cluster?: string };

export function register(program: Command): void {
  const cmd = program
    .command("restore")
    .description("restore a backup (a name from `list`, or `latest`) to a snapshot file")
    .argument("<backup>", "backup name as `list` prints it, or latest");
  addStoreOptions(cmd);
  addDecryptOptions(cmd);
  cmd
    .option(
      "--to-file <path>",
      "write the snapshot here (accepted by etcdctl/etcdutl snapshot restore and talosctl bootstrap --recover-from)",
    )
    .option("--force", "replace an existing output file")
    .addOption(new Option("--cluster <name>", "with latest: only this cluster's backups"))
    .option("--before <time>", "with latest: the newest backup before this time (RFC 3339)")
    .action(async (backup: string, flags: RestoreFlags) => {
      if (!flags.toFile) throw new UsageError("no restore target given", "pass --to-file PATH");
      const before = flags.before ? new Date(flags.before) : undefined;
      if (before && Number.isNaN(before.getTime())) {
        throw new UsageError(
          `--before ${JSON.stringify(flags.before)} is not a time`,
          "use RFC 3339, e.g. 2026-11-23T12:00:00Z",
        );
      }
      const store = storeFromFlags(flags);
      const entry = await resolveBackup(store, backup, {
        ...(before ? { before } : {}),
        ...(flags.cluster ? { cluster: flags.cluster } : {}),
      });
      const decrypt = await decryptionFromFlags(flags);
      const progress = new ProgressBar("restoring");
      const { signal, dispose } = abortOnSignals();
      try {
        const result = await restoreToFile({
          store,
          entry,
          out: flags.toFile,
          ...(decrypt ? { decrypt } : {}),
          force: flags.force ?? false,
          signal,
          onProgress: (n) => progress.update(n, entry.object?.size),
        });
        progress.done();
        process.stdout.write(
          `restored ${entry.key} to ${result.path} (${formatBytes(result.dbSize + 32)}, sha256 trailer ok${entry.manifest ? ", manifest sha256 ok" : ""})\n`,
        );
      } finally {
        progress.done();
        dispose();
      }
    });
}
