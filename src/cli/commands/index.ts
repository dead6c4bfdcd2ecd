import type { Command } from "commander";

/** Each subcommand's module, loaded on demand: it exports `register(program)`. */
const COMMANDS = {
  save: () => import("./save.ts"),
  list: () => import("./list.ts"),
  restore: () => import("./restore.ts"),
  "restore-object": () => import("./restore-object.ts"),
  status: () => import("./status.ts"),
  verify: () => import("./verify.ts"),
  inspect: () => import("./inspect.ts"),
  get: () => import("./get.ts"),
  diff: () => import("./diff.ts"),
  prune: () => import("./prune.ts"),
  keygen: () => import("./keygen.ts"),
  rekey: () => import("./rekey.ts"),
  "save-config": () => import("./save-config.ts"),
  "restore-config": () => import("./restore-config.ts"),
  daemon: () => import("./daemon.ts"),
  operator: () => import("./operator.ts"),
  log: () => import("./log.ts"),
  hold: () => import("./hold.ts"),
} satisfies Record<string, () => Promise<{ register(program: Command): void }>>;

/**
 * Every subcommand lives in its own module under src/cli/commands/ and exports `register(program)`, which adds
 * the command with its flags and an action that only parses input and calls the library.
 *
 * Only the module of the command being run is loaded (with its share of the library): loading all of them
 * took 0.1 s of every run, a quarter of `status` on a 200 MB snapshot. Help, `help CMD`, an unknown or a
 * missing command load them all, so listings and suggestions stay complete; `--version` alone loads none.
 */
export async function registerCommands(program: Command, argv: string[]): Promise<void> {
  const name = argv.slice(2).find((a) => !a.startsWith("-"));
  // `--version` alone (the first thing a container or package check runs) needs no command: loading all of
  // them made it slower than `status` of a 200 MB snapshot.
  const versionOnly = name === undefined && argv.slice(2).some((a) => a === "--version" || a === "-V");
  const only = name !== undefined && Object.hasOwn(COMMANDS, name) ? [name as keyof typeof COMMANDS] : null;
  const names = versionOnly ? [] : (only ?? (Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]));
  const modules = await Promise.all(names.map((n) => COMMANDS[n]()));
  for (const module of modules) module.register(program);
}
