import { stat } from "node:fs/promises";
import { type Command, Option } from "commander";
import { resolveBackup } from "../../catalog/catalog.ts";
import { Hinted, UsageError } from "../../errors.ts";
import type { testRestore } from "../../restore/test-restore.ts";
import { type Retention, retentionJson, retentionLabel } from "../../store/store.ts";
import { renderVerifyReport, type VerifyReport, verifyBackup, verifySnapshot } from "../../verify/verify.ts";
import { decryptionFromFlags } from "../encryption-options.ts";
import { removeLeftovers } from "../leftovers.ts";
import { abortOnSignals } from "../signals.ts";
import { addSnapshotInputOptions, openSnapshotInput, type SnapshotInputFlags } from "../snapshot-input.ts";
import { storeFromFlags } from "../store-from-flags.ts";

type VerifyFlags = SnapshotInputFlags & {
  testRestore?: boolean;
  output: "text" | "json";
  log?: boolean;
  at?: string;
  revision?: string;
  replayDir?: string;
};

export function register(program: Command): void {
  const cmd = program
    .command("verify")
    .description(
      "check a backup: sha256 trailer, manifest, bbolt structure; --test-restore starts etcd on it",
    )
    .argument(
      "[snapshot]",
      "a backup name from `list` (or latest) with --to, or a snapshot file (none with --log or --at/--revision)",
    );
  addSnapshotInputOptions(cmd);
  cmd
    .option("--test-restore", "also restore it into a temporary data dir, start etcd on it and compare")
    .option(
      "--log",
      "check the revision log's chains instead: contiguous ranges, every segment's sha256 against its manifest",
    )
    .option(
      "--at <time>",
      "with --test-restore: rebuild the state at this time from the log, start etcd on it",
    )
    .option("--revision <n>", "with --test-restore: rebuild the state at this revision from the log")
    .option("--replay-dir <dir>", "with --at/--revision: where the replay's private etcd works")
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (arg: string | undefined, flags: VerifyFlags) => {
      if (flags.log || flags.at !== undefined || flags.revision !== undefined) {
        return await verifyLogFromFlags(arg, flags);
      }
      if (arg === undefined)
        throw new UsageError("no backup given", "pass a name from `list`, latest, a file, or --log");
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
        let lock: Retention | undefined;
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
          lock = store.retention ? await store.retention(entry.key) : undefined;
          if (flags.testRestore && report.ok) {
            // Loaded only here: it spawns etcd, which no other verification needs.
            const { testRestore } = await import("../../restore/test-restore.ts");
            testReport = await testRestore({ store, entry, ...(decrypt ? { decrypt } : {}), signal });
          }
        }
        const ok = report.ok && (testReport ? testReport.matches : true);
        if (flags.output === "json") {
          process.stdout.write(
            `${JSON.stringify({ backup: label, ...report, ok, ...(lock ? { lock: retentionJson(lock) } : {}), ...(testReport ? { testRestore: testReport } : {}) }, null, 2)}\n`,
          );
        } else {
          process.stdout.write(renderVerifyReport(label, report));
          // Only where something holds it: a directory or an unlocked bucket prints what it always printed.
          if (lock && retentionLabel(lock) !== "-") process.stdout.write(`lock: ${retentionLabel(lock)}\n`);
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

/** `verify --log` and `verify --test-restore --at TIME | --revision N`: the revision log, not one backup. */
async function verifyLogFromFlags(arg: string | undefined, flags: VerifyFlags): Promise<void> {
  if (arg !== undefined) {
    throw new UsageError(
      `a backup (${arg}) and --log or --at/--revision exclude each other`,
      "verify the backup and the log in two runs",
    );
  }
  const atPoint = flags.at !== undefined || flags.revision !== undefined;
  if (atPoint && !flags.testRestore) {
    throw new UsageError(
      "--at/--revision go with --test-restore",
      "add --test-restore to rebuild that point and start etcd on it, or use --log to check the chains",
    );
  }
  if (flags.testRestore && !atPoint) {
    throw new UsageError("--test-restore with --log needs a point", "add --at TIME or --revision N");
  }
  if (flags.before !== undefined) throw new UsageError("--before goes with a backup name, not with --log");
  const { parseRecoveryPoint } = await import("../point-in-time-restore.ts");
  const point = atPoint ? parseRecoveryPoint(flags, new Date()) : undefined;
  await removeLeftovers();
  const store = storeFromFlags(flags);
  const decrypt = await decryptionFromFlags(flags);
  const { signal, dispose } = abortOnSignals();
  try {
    const { verifyLog } = await import("../../point-in-time/verify-log.ts");
    const { logVerificationOk, renderLogVerification } = await import("../../verify/log-report.ts");
    const log = flags.log
      ? await verifyLog(store, {
          ...(flags.cluster ? { cluster: flags.cluster } : {}),
          ...(decrypt ? { decrypt } : {}),
          signal,
        })
      : undefined;
    let ok = log ? logVerificationOk(log) : true;
    if (log && flags.output === "text") process.stdout.write(renderLogVerification(log, store.location));
    let atReport:
      | Awaited<ReturnType<typeof import("../../verify/test-restore-at.ts").testRestoreAtPoint>>
      | undefined;
    if (point) {
      const { renderPointTestRestore, testRestoreAtPoint } = await import("../../verify/test-restore-at.ts");
      atReport = await testRestoreAtPoint({
        store,
        ...(flags.cluster ? { cluster: flags.cluster } : {}),
        point,
        ...(decrypt ? { decrypt } : {}),
        ...(flags.replayDir ? { replayDir: flags.replayDir } : {}),
        signal,
        onLine: (line) => process.stderr.write(`${line}\n`),
      });
      ok &&= atReport.matches;
      if (flags.output === "text") process.stdout.write(renderPointTestRestore(atReport));
    }
    if (flags.output === "json") {
      process.stdout.write(
        `${JSON.stringify({ ok, ...(log ? { log } : {}), ...(atReport ? { testRestore: atReport } : {}) }, null, 2)}\n`,
      );
    }
    if (!ok) process.exitCode = 1;
  } finally {
    dispose();
  }
}
