#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { checkClusterName } from "../catalog/names.ts";
import { describeError, isUsageError } from "../errors.ts";
import { processRedactor } from "../observability/redact.ts";
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
    .configureOutput({ outputError: (str, write) => write(str) })
    // Every command's --cluster (save, list, prune, restore, verify, daemon...) is checked here, once, before the
    // command runs: a name such as ../x must not select, name or reach anything. Empty means "not given".
    .hook("preAction", (_program, command) => {
      const cluster: unknown = command.opts().cluster;
      if (typeof cluster === "string" && cluster !== "") checkClusterName(cluster, "--cluster");
    });
  await registerCommands(program, argv);
  return program;
}

/**
 * Every line the CLI writes to stderr (error lines, warnings, progress, commander's usage errors, which echo
 * argument values) passes the process's redactor: a secret given on the command line or in the environment, or
 * shaped like one, is never printed. stdout is left alone: it carries data (`get`, `keygen -o -`, a snapshot).
 */
function redactStderr(): void {
  const write = process.stderr.write.bind(process.stderr) as (...args: unknown[]) => boolean;
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text =
      typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("utf8") : undefined;
    return text === undefined ? write(chunk, ...rest) : write(processRedactor.redact(text), ...rest);
  }) as typeof process.stderr.write;
}

async function main(argv: string[]): Promise<number> {
  processRedactor.addFromEnv(process.env).addFromArgv(argv);
  redactStderr();
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
    // Redacted here too (not only by the stderr wrapper): this is the line every failure ends with.
    process.stderr.write(`etcd-backup: ${processRedactor.redact(describeError(err))}\n`);
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
