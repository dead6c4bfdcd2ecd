/**
 * Which recipients a backup has after a rekey. The rule, one for every backup:
 *
 *   new recipients = the backup's recipients (as its manifest names them)
 *                    − every --remove-recipient
 *                    + every --recipient / --recipients-file key
 *
 * So `--recipient B` alone adds B and keeps everyone else; `--recipient B --remove-recipient A` rotates A out.
 * Old recipients are wrapped again from their public keys (the manifest keeps them), which is why a backup
 * whose manifest does not name them (a passphrase, an unmanaged or pre-manifest object) is refused rather than
 * silently losing its other readers. Ambiguous input is refused in one line: a key both added and removed,
 * a removal of a key the backup does not have (for one named backup), a result without recipients, a
 * passphrase, post-quantum keys beside classic ones (as `save` refuses them). A backup that already has the
 * outcome asked for (every added key, none of the removed ones) is left unchanged without error, so the same
 * command can be run again after a crash or a partial --all.
 */
import { AgeKeyError, checkRecipients, parseRecipient, type Recipient } from "../age/index.ts";
import { UsageError } from "../errors.ts";

/** A recipient as manifests record it: public information only. */
export interface PublicRecipient {
  kind: string;
  publicKey?: string;
}

/** What the user asked for, parsed. */
export interface RecipientChange {
  add: Recipient[];
  /** Public keys (age1…, age1pq1…), normalised. */
  remove: string[];
}

/** The outcome for one backup. */
export interface RecipientPlan {
  before: PublicRecipient[];
  after: Recipient[];
  /** True when the set is the same as before (nothing to rewrite). */
  unchanged: boolean;
  /** The removals that applied to this backup. */
  removed: string[];
}

/** Parses and checks the change itself, before any backup is looked at. */
export function parseRecipientChange(add: Recipient[], remove: string[]): RecipientChange {
  const removeKeys: string[] = [];
  for (const r of remove) {
    const text = r.trim();
    // Parsed to refuse a secret key or garbage in one line (never echoed), then kept as its canonical text.
    const parsed = parseRecipient(text);
    removeKeys.push(parsed.publicKey ?? text);
  }
  for (const r of add) {
    if (r.publicKey && removeKeys.includes(r.publicKey)) {
      throw new UsageError(
        `${fingerprint(r.publicKey)} is both added (--recipient) and removed (--remove-recipient)`,
        "give each key once",
      );
    }
  }
  if (add.length === 0 && removeKeys.length === 0) {
    throw new UsageError(
      "nothing to change: no --recipient, --recipients-file or --remove-recipient given",
      "name the new recipients, and the ones to remove",
    );
  }
  return { add, remove: [...new Set(removeKeys)] };
}

/**
 * The new recipients of a backup whose manifest names `before`. `strictRemovals`: a removal that is not one of
 * `before` is an error (a named backup: a typo must not pass silently); with --all it simply does not apply.
 */
export function planRecipients(
  backup: string,
  before: PublicRecipient[],
  change: RecipientChange,
  strictRemovals: boolean,
): RecipientPlan {
  if (before.some((r) => r.kind === "scrypt")) {
    throw new UsageError(
      `backup ${backup} is encrypted with a passphrase, which rekey does not change`,
      "restore it and save it again to change its key",
    );
  }
  const unnamed = before.filter((r) => !r.publicKey);
  if (before.length === 0 || unnamed.length > 0) {
    throw new UsageError(
      `the manifest of ${backup} does not name its recipients' public keys, so they could not be kept`,
      "save the backup again with the recipients it should have",
    );
  }
  const keys = before.map((r) => r.publicKey!);
  const removed = change.remove.filter((k) => keys.includes(k));
  // Already the outcome asked for (a rerun, or a rekey finished after a crash): nothing to do, no error.
  const done = change.add.every((r) => r.publicKey && keys.includes(r.publicKey)) && removed.length === 0;
  if (strictRemovals && !(done && change.add.length > 0)) {
    const missing = change.remove.filter((k) => !keys.includes(k));
    if (missing.length > 0) {
      throw new UsageError(
        `${fingerprint(missing[0]!)} is not a recipient of ${backup}`,
        "check --remove-recipient against `etcd-backup rekey --dry-run` or the manifest",
      );
    }
  }
  const after: Recipient[] = [];
  const seen = new Set<string>();
  for (const k of keys) {
    if (removed.includes(k) || seen.has(k)) continue;
    seen.add(k);
    after.push(parseRecipient(k));
  }
  for (const r of change.add) {
    if (r.publicKey && seen.has(r.publicKey)) continue;
    if (r.publicKey) seen.add(r.publicKey);
    after.push(r);
  }
  if (after.length === 0) {
    throw new UsageError(
      `rekey would leave ${backup} without any recipient`,
      "add one with --recipient (nobody could read the backup otherwise)",
    );
  }
  try {
    checkRecipients(after);
  } catch (err) {
    if (err instanceof AgeKeyError) throw new UsageError(`${backup}: ${err.message}`, err.hint);
    throw err;
  }
  const unchanged =
    after.length === new Set(keys).size && after.every((r) => r.publicKey && keys.includes(r.publicKey));
  return { before, after, unchanged, removed };
}

/** How a public key is shown: an X25519 key in full, a 1,900-character post-quantum key shortened. */
export function fingerprint(publicKey: string): string {
  return publicKey.length > 70 ? `${publicKey.slice(0, 16)}…${publicKey.slice(-8)}` : publicKey;
}

/** The manifest form of a recipient list. */
export function publicRecipients(recipients: Recipient[]): PublicRecipient[] {
  return recipients.map((r) => ({ kind: r.kind, ...(r.publicKey ? { publicKey: r.publicKey } : {}) }));
}
