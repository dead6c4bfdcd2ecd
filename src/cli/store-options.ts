import { type Command, Option } from "commander";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";

/** `--to DEST`: where backups are (a directory, file:///path or s3://bucket/prefix). */
export function addStoreOptions(cmd: Command): Command {
  return cmd.addOption(
    new Option("--to <dest>", "where backups are kept: a directory, file:///path or s3://bucket/prefix").env(
      "ETCD_BACKUP_TO",
    ),
  );
}

export interface StoreFlags {
  to?: string;
}

export function storeFromFlags(flags: StoreFlags): Store {
  return openStore(flags.to ?? "");
}
