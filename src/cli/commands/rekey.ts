import { type Command, Option } from "commander";
import { UsageError } from "../../errors.ts";
import { processRedactor } from "../../observability/redact.ts";
import { formatBytes } from "../../render/units.ts";
import { abortOnSignals } from "../signals.ts";
import { storeFromFlags } from "../store-from-flags.ts";
import { addStoreOptions, type StoreFlags } from "../store-options.ts";

type RekeyFlags = StoreFlags & {
  all?: boolean;
  cluster?: string;
  log?: boolean;
  identity?: string[] | string;
  recipient?: string[];
  recipientsFile?: string[];
  removeRecipient?: string[];
  dryRun?: boolean;
  output: "text" | "json";
};

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function register(program: Command): void {
  const cmd = program
    .command("rekey")
    .description(
      "give encrypted backups new age recipients by rewriting only their header (the payload is not touched)",
    )
    .argument("[backup]", "a backup name as `list` prints it, or latest (or --all)");
  addStoreOptions(cmd);
  cmd
    .option("--all", "every encrypted backup in the store (of --cluster when given)")
    .option("--cluster <name>", "only this cluster's backups and log")
    .option("--log", "also the revision log's segments (alone: only them)")
    .addOption(
      new Option("-i, --identity <file>", "age identity file that opens the backups (repeatable)")
        .argParser(collect)
        .env("ETCD_BACKUP_IDENTITY"),
    )
    .addOption(new Option("--recipient <age1...>", "recipient to add (repeatable)").argParser(collect))
    .addOption(
      new Option(
        "--recipients-file <file>",
        "file of recipients to add, one per line (repeatable)",
      ).argParser(collect),
    )
    .addOption(
      new Option("--remove-recipient <age1...>", "recipient to remove (repeatable)").argParser(collect),
    )
    .option("--dry-run", "only list what would change (names and public keys)")
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (backup: string | undefined, flags: RekeyFlags) => {
      if (backup && flags.all) throw new UsageError("both a backup and --all given", "pass one of them");
      if (!backup && !flags.all && !flags.log)
        throw new UsageError("no backup given", "pass a name from `list`, latest, --all, or --log");
      const files = typeof flags.identity === "string" ? [flags.identity] : (flags.identity ?? []);
      if (files.length === 0 && !flags.dryRun)
        throw new UsageError("no --identity given", "pass an age identity file that opens the backups");
      const { loadIdentities, loadRecipients } = await import("../../backup/encryption.ts");
      const { parseRecipientChange } = await import("../../backup/rekey-recipients.ts");
      const { runRekey } = await import("../../backup/rekey-run.ts");
      const identities = await loadIdentities(files, { onSecret: (s) => processRedactor.add(s) });
      const add = await loadRecipients({
        recipients: flags.recipient ?? [],
        recipientsFiles: flags.recipientsFile ?? [],
      });
      const change = parseRecipientChange(add, flags.removeRecipient ?? []);
      const store = storeFromFlags(flags);
      const { signal, dispose } = abortOnSignals();
      const text = flags.output === "text";
      try {
        const items = await runRekey({
          store,
          identities,
          change,
          ...(backup ? { backup } : {}),
          ...(flags.all ? { all: true } : {}),
          ...(flags.cluster ? { cluster: flags.cluster } : {}),
          ...(flags.log ? { log: true } : {}),
          ...(flags.dryRun ? { dryRun: true } : {}),
          signal,
          notice: (line) => process.stderr.write(`${line}\n`),
          onItem: (item) => {
            if (!text) return;
            const keys = item.before.length ? ` ${item.before.join(", ")} -> ${item.after.join(", ")}` : "";
            const o = item.outcome;
            const how = o
              ? ` (header ${o.headerBefore} -> ${o.headerAfter} bytes; ${o.method}, sent ${formatBytes(o.sentBytes)} of ${formatBytes(o.size)})`
              : "";
            const recovered = item.recovered ? ` [an interrupted rekey was ${item.recovered} first]` : "";
            const reason = item.reason ? ` (${item.reason})` : "";
            process.stdout.write(
              `${item.action.padEnd(11)} ${item.name}${keys}${how}${reason}${recovered}\n`,
            );
          },
        });
        if (!text) process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
        if (items.some((i) => i.action === "failed")) process.exitCode = 1;
      } finally {
        dispose();
        (store as { destroy?: () => void }).destroy?.();
      }
    });
}
