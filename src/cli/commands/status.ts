import { type Command, Option } from "commander";
import { renderStatus, snapshotStatus } from "../../mvcc/status.ts";
import {
  addSnapshotInputOptions,
  openDb,
  openSnapshotInput,
  type SnapshotInputFlags,
} from "../snapshot-input.ts";

export function register(program: Command): void {
  const cmd = program
    .command("status")
    .description(
      "hash, revision, total keys and size of a snapshot, as `etcdutl snapshot status` prints them",
    )
    .argument("<snapshot>", "a snapshot file, or a backup name from `list` (or latest) with --to");
  addSnapshotInputOptions(cmd);
  cmd
    .addOption(
      new Option("-w, --write-out <format>", "table or json").choices(["table", "json"]).default("table"),
    )
    .action(async (arg: string, flags: SnapshotInputFlags & { writeOut: "table" | "json" }) => {
      const { snapshot } = await openSnapshotInput(arg, flags);
      try {
        const db = openDb(snapshot);
        try {
          process.stdout.write(renderStatus(snapshotStatus(db), flags.writeOut));
        } finally {
          db.close();
        }
      } finally {
        await snapshot.dispose();
      }
    });
}
