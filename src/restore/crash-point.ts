/**
 * Test hooks for the crash tests (test/e2e/crash-restore.test.ts): when the environment variable
 * `ETCD_BACKUP_TEST_CRASH_AT` names a point, the process kills itself with SIGKILL right there, as a crash,
 * an OOM kill or `kill -9` would, so the tests can prove that nothing a killed run leaves behind survives the
 * next run. Unset (always, outside those tests) they do nothing.
 */
const crashAt = process.env.ETCD_BACKUP_TEST_CRASH_AT;

/** `ETCD_BACKUP_TEST_CRASH_AT=<name>`: dies on reaching this point. */
export function crashPoint(name: string): void {
  if (crashAt === name) process.kill(process.pid, "SIGKILL");
}

const bytesAt = crashAt?.startsWith("read:") ? Number(crashAt.slice("read:".length)) : undefined;

/**
 * `ETCD_BACKUP_TEST_CRASH_AT=read:<n>`: dies once `total` stored bytes of a backup have been read (the
 * decryption, decompression and writing of those before it may still be under way).
 */
export function crashAfterBytesRead(total: number): void {
  if (bytesAt !== undefined && total >= bytesAt) process.kill(process.pid, "SIGKILL");
}
