import { type Command, Option } from "commander";
import { UsageError } from "../../errors.ts";
import { DEFAULT_TOP, inspectSnapshot, renderInspect } from "../../snapshot/index.ts";
import {
  addSnapshotInputOptions,
  openDb,
  openProvenSnapshotInput,
  type SnapshotInputFlags,
} from "../snapshot-input.ts";

export function register(program: Command): void {
  const cmd = program
    .command("inspect")
    .description(
      "what a snapshot holds: live objects per Kubernetes resource and namespace, biggest objects, leases",
    )
    .argument("<snapshot>", "a snapshot file, or a backup name from `list` (or latest) with --to");
  addSnapshotInputOptions(cmd);
  cmd
    .option("--prefix <prefix>", "only keys under this prefix, e.g. /registry/secrets/")
    .option("--top <n>", `how many of the biggest objects to show (default ${DEFAULT_TOP})`)
    .addOption(
      new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .action(
      async (
        arg: string,
        flags: SnapshotInputFlags & { prefix?: string; top?: string; output: "table" | "json" },
      ) => {
        const top = flags.top === undefined ? DEFAULT_TOP : Number(flags.top);
        if (!Number.isInteger(top) || top < 0)
          throw new UsageError(`--top ${flags.top} is not a count`, "use e.g. --top 20");
        const { snapshot } = await openProvenSnapshotInput(arg, flags);
        try {
          const db = openDb(snapshot);
          try {
            const result = inspectSnapshot(db, { ...(flags.prefix ? { prefix: flags.prefix } : {}), top });
            process.stdout.write(renderInspect(result, flags.output));
          } finally {
            db.close();
          }
        } finally {
          await snapshot.dispose();
        }
      },
    );
}
