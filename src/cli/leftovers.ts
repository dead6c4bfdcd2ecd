import { describeSweep, sweepWorkFolders } from "../restore/work-folder.ts";

/**
 * Removes what killed runs left behind (work folders of decrypted data, a test-restore etcd still serving
 * one) before a command starts, and says on stderr what it removed. `dirs`: where the command writes (the
 * directory of --to-file or --data-dir, a restore-config target), searched besides the temporary directory
 * and the registry of work folders. Never fails the command: what cannot be removed is a warning.
 */
export async function removeLeftovers(dirs: string[] = []): Promise<void> {
  for (const line of describeSweep(await sweepWorkFolders(dirs)))
    process.stderr.write(`etcd-backup: ${line}\n`);
}
