/**
 * The V8 options etcd-backup runs with, so that nobody has to set NODE_OPTIONS to fit a backup in a 128 MiB
 * pod: the npm launcher (bin/etcd-backup.js) re-executes Node with them for the commands that stream a
 * snapshot, and the standalone binary, which the container image runs, has them built in (the SEA config's
 * execArgv, scripts/build-binary.ts).
 *
 * `--max-semi-space-size=1`: a young generation of 1 MiB semi-spaces instead of V8's default of up to 16 MiB
 * (48 MiB of young generation in all). A snapshot flows through the stages in pieces that die young; with
 * small semi-spaces they are collected by frequent, cheap scavenges instead of piling up as external memory
 * until an old-space GC. Measured on the 216 MB bench snapshot (save to a directory, zstd + age): peak RSS
 * 178-191 -> 141-161 MiB with this flag alone, at the same speed (bench/RESULTS.md).
 *
 * Not here: `--expose-gc`, which the buffer budget (src/stages/buffer-budget.ts) needs under a memory limit. It
 * changes V8's flag hash, so the standalone binary's built-in code cache was rejected at every start (with a
 * warning on stderr); the budget turns it on at run time instead, only when it is active.
 */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/**
 * Commands that move snapshot-sized data (or run for long: daemon, operator, log) and so gain from the flags.
 * The others (status, list, keygen, help...) are short and read little; re-executing Node would only add its
 * start-up time to them.
 */
export const STREAMING_COMMANDS: readonly string[] = [
  "save",
  "restore",
  "verify",
  "daemon",
  "operator",
  "log",
  "save-config",
  "restore-config",
  "restore-object",
  "inspect",
  "get",
  "diff",
];

/** The flag's name (`--max-semi-space-size` of `--max-semi-space-size=1`), with `_` read as `-` as V8 does. */
function flagName(flag: string): string {
  return flag.split("=")[0]!.replace(/_/g, "-");
}

/**
 * The argv to re-execute Node with (`process.execve(process.execPath, argv)`), or null when nothing is to be
 * done: the command is not a streaming one, or every flag is in effect already, or the user chose a value
 * of their own (on Node's command line or in NODE_OPTIONS), which is kept.
 */
export function relaunchArgv(
  execPath: string,
  argv: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] | null {
  const command = argv.slice(2).find((a) => !a.startsWith("-"));
  if (command === undefined || !STREAMING_COMMANDS.includes(command)) return null;
  const given = new Set([...execArgv, ...(nodeOptions ?? "").split(/\s+/)].filter(Boolean).map(flagName));
  const missing = V8_FLAGS.filter((f) => !given.has(flagName(f)));
  if (missing.length === 0) return null;
  return [execPath, ...missing, ...execArgv, ...argv.slice(1)];
}
