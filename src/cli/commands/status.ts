import { type Command, Option } from "commander";
import { renderStatus, STATUS_DIALECTS, type StatusDialect, snapshotStatus } from "../../mvcc/status.ts";
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
    .addOption(
      new Option(
        "--etcd-version <release>",
        "print as this etcd release's tool does: 3.6 (live keys as total keys, plus the storage version), 3.5 or 3.4 (every entry as total keys)",
      )
        .choices([...STATUS_DIALECTS])
        .default("3.6"),
    )
    .action(
      async (
        arg: string,
        flags: SnapshotInputFlags & { writeOut: "table" | "json"; etcdVersion: StatusDialect },
      ) => {
        const { snapshot } = await openSnapshotInput(arg, flags);
        try {
          const db = openDb(snapshot);
          try {
            const status = snapshotStatus(db, { liveKeys: flags.etcdVersion === "3.6" });
            process.stdout.write(renderStatus(status, flags.writeOut, flags.etcdVersion));
          } finally {
            db.close();
          }
        } finally {
          await snapshot.dispose();
        }
      },
    );
}
