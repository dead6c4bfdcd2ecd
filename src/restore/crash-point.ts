/**
 * A test hook for the crash tests (test/e2e/crash-restore.test.ts): when the environment variable
 * `ETCD_BACKUP_TEST_CRASH_AT` names this point, the process kills itself with SIGKILL right here, as a crash,
 * an OOM kill or `kill -9` would, so the tests can prove that nothing a killed run leaves behind survives the
 * next run. Unset (always, outside those tests) it does nothing.
 */
export function crashPoint(name: string): void {
  if (process.env.ETCD_BACKUP_TEST_CRASH_AT === name) process.kill(process.pid, "SIGKILL");
}
