import type { Command } from "commander";

/**
 * Every subcommand lives in its own module under src/cli/commands/ and exports
 * `register(program)`, which adds the command with its flags and an action that
 * only parses input and calls the library.
 */
export function registerCommands(program: Command): void {
  void program;
}
