import type { Command } from "commander";
import * as keygen from "./keygen.ts";
import * as list from "./list.ts";
import * as prune from "./prune.ts";
import * as restore from "./restore.ts";
import * as restoreConfig from "./restore-config.ts";
import * as save from "./save.ts";
import * as saveConfig from "./save-config.ts";

/**
 * Every subcommand lives in its own module under src/cli/commands/ and exports
 * `register(program)`, which adds the command with its flags and an action that
 * only parses input and calls the library.
 */
export function registerCommands(program: Command): void {
  for (const command of [save, list, restore, prune, keygen, saveConfig, restoreConfig]) command.register(program);
}
