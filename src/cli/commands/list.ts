import { type Command, Option } from "commander";
import { type CatalogEntry, listBackups } from "../../catalog/catalog.ts";
import { formatStamp } from "../../catalog/names.ts";
import { addStoreOptions, type StoreFlags, storeFromFlags } from "../store-options.ts";
import { renderTable } from "../table.ts";
import { formatAge, formatBytes } from "../units.ts";

export function register(program: Command): void {
  const cmd = program.command("list").description("list the backups in a destination, newest first");
  addStoreOptions(cmd);
  cmd
    .addOption(
      new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .action(async (flags: StoreFlags & { output: string }) => {
      const store = storeFromFlags(flags);
      const entries = await listBackups(store);
      if (flags.output === "json") {
        process.stdout.write(`${JSON.stringify(entries.map(toJson), null, 2)}\n`);
        return;
      }
      if (entries.length === 0) {
        process.stdout.write(`no backups in ${store.location}\n`);
        return;
      }
      const now = Date.now();
      process.stdout.write(
        renderTable(
          [
            "NAME",
            "TIME (UTC)",
            "AGE",
            "CLUSTER",
            "REVISION",
            "DB SIZE",
            "STORED",
            "COMPRESSION",
            "ENCRYPTION",
            "MANIFEST",
          ],
          entries.map((e) => [
            e.key,
            formatStamp(e.time),
            formatAge(now - e.time.getTime()),
            e.cluster,
            e.manifest?.etcd ? String(e.manifest.etcd.revision) : "-",
            e.manifest ? formatBytes(e.manifest.dbSize) : "-",
            e.object ? formatBytes(e.object.size) : "-",
            e.compression,
            e.encrypted ? "age" : "none",
            stateLabel(e),
          ]),
        ),
      );
    });
}

function stateLabel(e: CatalogEntry): string {
  switch (e.state) {
    case "complete":
      return "yes";
    case "unmanaged":
      return "no (other tool)";
    case "incomplete":
      return "INCOMPLETE";
    case "invalid":
      return `INVALID: ${e.problem ?? ""}`;
  }
}

function toJson(e: CatalogEntry) {
  return {
    name: e.key,
    cluster: e.cluster,
    time: e.time.toISOString(),
    kind: e.kind,
    state: e.state,
    compression: e.compression,
    encrypted: e.encrypted,
    storedSize: e.object?.size ?? null,
    hasManifest: e.manifest !== undefined,
    ...(e.problem ? { problem: e.problem } : {}),
    ...(e.manifest ? { manifest: e.manifest } : {}),
  };
}
