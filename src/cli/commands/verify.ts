import { stat } from "node:fs/promises";
import { type Command, Option } from "commander";
import { resolveBackup } from "../../catalog/catalog.ts";
import { Hinted } from "../../errors.ts";
import type { testRestore } from "../../restore/test-restore.ts";
import { renderVerifyReport, type VerifyReport, verifyBackup, verifySnapshot } from "../../verify/verify.ts";
import { decryptionFromFlags } from "../encryption-options.ts";
import { removeLeftovers } from "../leftovers.ts";
import { abortOnSignals } from "../signals.ts";
import { addSnapshotInputOptions, openSnapshotInput, type SnapshotInputFlags } from "../snapshot-input.ts";
import { storeFromFlags } from "../store-options.ts";

type VerifyFlags = SnapshotInputFlags & { testRestore?: boolean; output: "text" | "json" };

export function register(program: Command): void {
  const cmd = program
    .command("verify")
    .description(
      "check a backup: sha256 trailer, manifest, bbolt structure; --test-restore starts etcd on it",
    )
    .argument("<snapshot>", "a backup name from `list` (or latest) with --to, or a snapshot file");
  addSnapshotInputOptions(cmd);
  cmd
    .option("--test-restore", "also restore it into a temporary data dir, start etcd on it and compare")
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (arg: string, flags: VerifyFlags) => {
      await removeLeftovers();
      const { signal, dispose } = abortOnSignals();
      try {
        const isFile = await stat(arg).then(
          (s) => s.isFile(),
          () => false,
        );
        let report: VerifyReport;
        let label = arg;
        let testReport: Awaited<ReturnType<typeof testRestore>> | undefined;
        if (isFile) {
          if (flags.testRestore)
            throw new Hinted("--test-restore works on stored backups", "pass a backup name with --to");
          const { snapshot } = await openSnapshotInput(arg, flags, signal);
          try {
            report = await verifySnapshot(snapshot);
          } finally {
            await snapshot.dispose();
          }
        } else {
          const decrypt = await decryptionFromFlags(flags);
          const store = storeFromFlags(flags);
          const before = flags.before ? new Date(flags.before) : undefined;
          const entry = await resolveBackup(store, arg, {
            ...(before && !Number.isNaN(before.getTime()) ? { before } : {}),
            ...(flags.cluster ? { cluster: flags.cluster } : {}),
            // A named backup whose manifest does not match its object is verified, so each mismatch is named.
            allowMismatched: true,
          });
          label = entry.key;
          report = await verifyBackup(store, entry, { ...(decrypt ? { decrypt } : {}), signal });
          if (flags.testRestore && report.ok) {
            // Loaded only here: it spawns etcd, which no other verification needs.
            const { testRestore } = await import("../../restore/test-restore.ts");
            testReport = await testRestore({ store, entry, ...(decrypt ? { decrypt } : {}), signal });
          }
        }
        const ok = report.ok && (testReport ? testReport.matches : true);
        if (flags.output === "json") {
          process.stdout.write(
            `${JSON.stringify({ backup: label, ...report, ok, ...(testReport ? { testRestore: testReport } : {}) }, null, 2)}\n`,
          );
        } else {
          process.stdout.write(renderVerifyReport(label, report));
          if (testReport) {
            const { renderTestRestore } = await import("../../restore/test-restore.ts");
            process.stdout.write(renderTestRestore(testReport));
          }
        }
        if (!ok) process.exitCode = 1;
      } finally {
        dispose();
      }
    });
}
