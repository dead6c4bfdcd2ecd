export { formatDuration, parseDuration } from "./duration.ts";
export { readSettingsFile } from "./file.ts";
export { type BackupJob, backupJobFromConfig, type JobEnvironment } from "./job.ts";
export {
  type BackupJobConfig,
  type BackupJobConfigInput,
  backupJobConfigSchema,
  cronProblem,
  type DaemonConfig,
  type DaemonSettingsInput,
  daemonSettingsSchema,
  parseBackupJobConfig,
  parseDaemonConfig,
  parseListenAddress,
  settingName,
} from "./schema.ts";
