import { type Command, Option } from "commander";
import { checkClusterName } from "../../catalog/names.ts";
import { KUBEADM_DIR, kubeadmPaths } from "../../config-archive/collect.ts";
import { UsageError } from "../../errors.ts";
import { formatBytes } from "../../render/units.ts";
import { parseCompression, parseLevel } from "../../stages/compress.ts";
import { addEncryptOptions, type EncryptFlags, encryptionPlanFromFlags } from "../encryption-options.ts";
import { addObjectLockOptions } from "../object-lock-options.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";

type SaveConfigFlags = EncryptFlags &
  StoreFlags & {
    path?: string[];
    cluster: string;
    compress: string;
    level?: string;
    output: string;
    iUnderstandPrivateKeysAreStoredUnencrypted?: boolean;
  };

export function register(program: Command): void {
  const cmd = program
    .command("save-config")
    .description(
      `archive the control plane's PKI, static pod manifests and kubeconfigs (default: ${KUBEADM_DIR}/{pki,manifests,*.conf}) beside the snapshots, encrypted`,
    );
  addStoreOptions(cmd);
  addObjectLockOptions(cmd);
  addEncryptOptions(cmd);
  cmd
    .addOption(
      new Option(
        "--path <path>",
        `a file or directory to archive (repeatable; default the kubeadm set in ${KUBEADM_DIR})`,
      ).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]),
    )
    .addOption(
      new Option("--cluster <name>", "cluster name used in the archive's name")
        .env("CLUSTER_NAME")
        .default("etcd"),
    )
    .addOption(new Option("--compress <kind>", "zstd or none").env("ETCD_BACKUP_COMPRESS").default("zstd"))
    .addOption(new Option("--level <n>", "zstd level 1-19 (default 3)").env("ETCD_BACKUP_LEVEL"))
    .addOption(
      new Option(
        "--i-understand-private-keys-are-stored-unencrypted",
        "with --no-encrypt: store the archive, private keys included, in the clear",
      ),
    )
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (flags: SaveConfigFlags) => {
      checkClusterName(flags.cluster, "--cluster");
      const encryption = await encryptionPlanFromFlags(flags);
      const acknowledged = flags.iUnderstandPrivateKeysAreStoredUnencrypted === true;
      if (!encryption && !acknowledged) {
        throw new UsageError(
          "--no-encrypt would store the cluster's private keys (pki/*.key, kubeconfigs) in the clear",
          "encrypt with --recipient age1..., or add --i-understand-private-keys-are-stored-unencrypted",
        );
      }
      if (encryption && acknowledged) {
        throw new UsageError(
          "--i-understand-private-keys-are-stored-unencrypted goes only with --no-encrypt",
        );
      }
      const compression = parseCompression(flags.compress);
      const level = flags.level !== undefined ? parseLevel(flags.level) : undefined;
      const paths = flags.path?.length ? flags.path : await kubeadmPaths();
      const store = storeFromFlags(flags);
      await store.prepare?.();
      const { signal, dispose } = abortOnSignals();
      try {
        const { saveConfigArchive } = await import("../../config-archive/save.ts");
        const result = await saveConfigArchive({
          paths,
          store,
          cluster: flags.cluster,
          compression,
          ...(level !== undefined ? { level } : {}),
          encryption,
          plaintextPrivateKeysAcknowledged: acknowledged,
          signal,
        });
        for (const skipped of result.skipped)
          process.stderr.write(`etcd-backup: warning: skipped ${skipped}\n`);
        if (flags.output === "json") {
          process.stdout.write(
            `${JSON.stringify({ key: result.key, location: store.location, manifest: { ...result.manifest, config: result.config } }, null, 2)}\n`,
          );
        } else {
          const c = result.config;
          process.stdout.write(
            `saved ${result.key} to ${store.location}: ${c.files} files, ${c.directories} directories, ${c.symlinks} symlinks (${formatBytes(c.bytes)}), ` +
              `${formatBytes(result.manifest.sizes.stored)} stored (${result.manifest.encryption.kind === "age" ? "age-encrypted" : "NOT encrypted"})\n`,
          );
        }
      } finally {
        dispose();
      }
    });
}
