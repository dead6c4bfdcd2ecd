import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import {
  type ObjectLockMode,
  type ObjectLockSettings,
  parseObjectLockDays,
  parseObjectLockMode,
} from "../store/s3-settings.ts";

/** The variables for `--legal-hold` and its older S3 name; read here, not by commander (see `legalHoldFromEnv`). */
export const LEGAL_HOLD_ENVS = ["ETCD_BACKUP_LEGAL_HOLD", "ETCD_BACKUP_S3_LEGAL_HOLD"] as const;

/** The values commander collects for the options `addObjectLockOptions` adds. */
export interface ObjectLockOptionValues {
  objectLock?: ObjectLockMode;
  objectLockDays?: number;
  legalHold?: boolean;
  /** The S3-only names these options had first; they still work, for any object store. */
  s3ObjectLock?: ObjectLockMode;
  s3ObjectLockDays?: number;
  s3LegalHold?: boolean;
}

/**
 * Adds `--object-lock MODE`, `--object-lock-days N` and `--legal-hold` (each also from its ETCD_BACKUP_*
 * variable) to a command that writes backups, for every object store destination: S3 Object Lock, GCS object
 * retention and holds, Azure immutability. The first names, `--s3-object-lock`, `--s3-object-lock-days` and
 * `--s3-legal-hold` (ETCD_BACKUP_S3_*), are kept, out of the help. `save` and the daemon may leave the days to
 * --keep-within (config/schema.ts); `log` and `save-config` must give them.
 */
export function addObjectLockOptions(cmd: Command): Command {
  const group = "Immutability (object stores):";
  return cmd
    .addOption(
      new Option(
        "--object-lock <mode>",
        "write backups, manifests and log segments locked: governance or compliance (S3 Object Lock; GCS object retention Unlocked or Locked)",
      )
        .argParser((v) => parseObjectLockMode(v, "--object-lock"))
        .env("ETCD_BACKUP_OBJECT_LOCK")
        .helpGroup(group),
    )
    .addOption(
      new Option(
        "--object-lock-days <n>",
        "days each object stays locked from its upload (save and the daemon default to --keep-within)",
      )
        .argParser((v) => parseObjectLockDays(v, "--object-lock-days"))
        .env("ETCD_BACKUP_OBJECT_LOCK_DAYS")
        .helpGroup(group),
    )
    .addOption(
      new Option(
        "--legal-hold",
        "also put a hold on them (S3 legal hold, GCS temporary hold), kept until someone lifts it (env: ETCD_BACKUP_LEGAL_HOLD=true)",
      ).helpGroup(group),
    )
    .addOption(
      new Option("--s3-object-lock <mode>", "old name of --object-lock")
        .argParser((v) => parseObjectLockMode(v, "--s3-object-lock"))
        .env("ETCD_BACKUP_S3_OBJECT_LOCK")
        .hideHelp(),
    )
    .addOption(
      new Option("--s3-object-lock-days <n>", "old name of --object-lock-days")
        .argParser((v) => parseObjectLockDays(v, "--s3-object-lock-days"))
        .env("ETCD_BACKUP_S3_OBJECT_LOCK_DAYS")
        .hideHelp(),
    )
    .addOption(new Option("--s3-legal-hold", "old name of --legal-hold").hideHelp());
}

/**
 * A legal hold asked for by ETCD_BACKUP_LEGAL_HOLD or ETCD_BACKUP_S3_LEGAL_HOLD: true, false or unset. Read here
 * rather than by commander, which would take any value of a boolean flag's variable (`false` too) as "on": a
 * hold nobody asked for keeps backups forever. Throws `UsageError` for a value that is not true or false.
 */
export function legalHoldFromEnv(env: Record<string, string | undefined>): boolean | undefined {
  let out: boolean | undefined;
  for (const name of LEGAL_HOLD_ENVS) {
    const v = env[name]?.trim().toLowerCase();
    if (!v) continue;
    if (["1", "true", "yes", "on"].includes(v)) out = true;
    else if (["0", "false", "no", "off"].includes(v)) out ??= false;
    else throw new UsageError(`${name}: ${env[name]} is not true or false`);
  }
  return out;
}

/**
 * The lock the options ask for, either spelling (and the legal-hold variables), or undefined for none. The same
 * setting given twice with different values is a usage error: which one was meant cannot be guessed.
 */
export function objectLockFromOptions(
  opts: ObjectLockOptionValues,
  env: Record<string, string | undefined> = process.env,
): ObjectLockSettings | undefined {
  const mode = either(opts.objectLock, opts.s3ObjectLock, "--object-lock", "--s3-object-lock");
  const days = either(
    opts.objectLockDays,
    opts.s3ObjectLockDays,
    "--object-lock-days",
    "--s3-object-lock-days",
  );
  const legalHold = opts.legalHold === true || opts.s3LegalHold === true || legalHoldFromEnv(env) === true;
  if (mode === undefined && days === undefined && !legalHold) return undefined;
  return {
    ...(mode !== undefined ? { mode } : {}),
    ...(days !== undefined ? { days } : {}),
    ...(legalHold ? { legalHold: true } : {}),
  };
}

function either<T>(neutral: T | undefined, s3: T | undefined, name: string, oldName: string): T | undefined {
  if (neutral !== undefined && s3 !== undefined && neutral !== s3) {
    throw new UsageError(`${name} ${neutral} contradicts ${oldName} ${s3}`, `give only ${name}`);
  }
  return neutral ?? s3;
}
