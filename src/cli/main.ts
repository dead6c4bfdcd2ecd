#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { describeError, isUsageError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { registerCommands } from "./commands/index.ts";

/** Exit codes: 0 done, 1 the operation failed, 2 bad usage. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command("etcd-backup")
    .description("Streaming, encrypted, verified etcd backups for Kubernetes and Talos clusters")
    .version(VERSION)
    .option("--debug", "show stack traces on errors", false)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  await registerCommands(program, argv);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  const debug = argv.includes("--debug");
  // Node's deprecation notices (e.g. about TLS server names that are IP addresses) are for developers;
  // they would break the one-line error contract, so they show only with --debug.
  if (!debug) process.noDeprecation = true;
  try {
    await program.parseAsync(argv);
    // A command that completed but found problems (verify, prune) sets the exit code itself.
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message; help and version exit 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    process.stderr.write(`etcd-backup: ${describeError(err)}\n`);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n${causeStacks(err)}`);
    return isUsageError(err) ? EXIT_USAGE : EXIT_FAILED;
  }
}

function causeStacks(err: Error): string {
  let out = "";
  let cur: unknown = err.cause;
  while (cur instanceof Error) {
    out += `caused by: ${cur.stack}\n`;
    cur = cur.cause;
  }
  return out;
}

// A reader that stops early (`etcd-backup diff A B | head -1`) closes the pipe: that ends the output the
// way it ends for any Unix tool, quietly, instead of as an unhandled 'error' event with a stack trace.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

// A promise, not a top-level await: the standalone binary bundles this file as CommonJS (Node's
// single-executable applications run CommonJS only), where a top-level await cannot be.
void main(process.argv).then((code) => {
  process.exitCode = code;
});
