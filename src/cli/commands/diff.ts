import { type Command, Option } from "commander";
import { diffSnapshots, renderDiff } from "../../snapshot/index.ts";
import {
  addSnapshotInputOptions,
  openDb,
  openProvenSnapshotInput,
  type SnapshotInputFlags,
} from "../snapshot-input.ts";

export function register(program: Command): void {
  const cmd = program
    .command("diff")
    .description("what changed between two snapshots, per resource: added, removed, modified")
    .argument("<from>", "the older snapshot: a file or a backup name")
    .argument("<to>", "the newer snapshot: a file or a backup name");
  addSnapshotInputOptions(cmd);
  cmd
    .option("--prefix <prefix>", "only keys under this prefix")
    .addOption(
      new Option("-o, --output <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .action(
      async (
        a: string,
        b: string,
        flags: SnapshotInputFlags & { prefix?: string; output: "table" | "json" },
      ) => {
        const from = await openProvenSnapshotInput(a, flags);
        try {
          const to = await openProvenSnapshotInput(b, flags);
          try {
            const dbA = openDb(from.snapshot);
            const dbB = openDb(to.snapshot);
            try {
              const diff = diffSnapshots(dbA, dbB, flags.prefix ? { prefix: flags.prefix } : {});
              process.stdout.write(renderDiff(diff, flags.output));
            } finally {
              dbA.close();
              dbB.close();
            }
          } finally {
            await to.snapshot.dispose();
          }
        } finally {
          await from.snapshot.dispose();
        }
      },
    );
}
