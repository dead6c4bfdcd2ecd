import type { Command } from "commander";
import * as daemon from "./daemon.ts";
import * as diff from "./diff.ts";
import * as get from "./get.ts";
import * as inspect from "./inspect.ts";
import * as keygen from "./keygen.ts";
import * as list from "./list.ts";
import * as operator from "./operator.ts";
import * as prune from "./prune.ts";
import * as restore from "./restore.ts";
import * as restoreConfig from "./restore-config.ts";
import * as save from "./save.ts";
import * as saveConfig from "./save-config.ts";
import * as status from "./status.ts";
import * as verify from "./verify.ts";

/**
 * Every subcommand lives in its own module under src/cli/commands/ and exports
 * `register(program)`, which adds the command with its flags and an action that
 * only parses input and calls the library.
 */
export function registerCommands(program: Command): void {
  for (const command of [
    save,
    list,
    restore,
    status,
    verify,
    inspect,
    get,
    diff,
    prune,
    keygen,
    saveConfig,
    restoreConfig,
    daemon,
    operator,
  ])
    command.register(program);
}
