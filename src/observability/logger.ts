import { randomBytes } from "node:crypto";
import { type Logger, pino } from "pino";
import { processRedactor, type Redactor } from "./redact.ts";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** `json`: one JSON object per line; `pretty`: one human line; `auto`: pretty on a TTY, JSON otherwise. */
  format?: "auto" | "json" | "pretty";
  /** Where lines go (default stdout). */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Every line passes through it before it is written (default: the process's redactor). */
  redactor?: Redactor;
  level?: string;
}

/** Field names that never carry their value into a line, whatever the value is. */
const REDACT_PATHS = [
  "password",
  "passphrase",
  "secretAccessKey",
  "sessionToken",
  "identity",
  "*.password",
  "*.passphrase",
  "*.secretAccessKey",
  "*.sessionToken",
];

/**
 * A pino logger: JSON lines (`time` ISO 8601, `level` as a word, `msg`) or, on a TTY, readable lines
 * `HH:MM:SS LEVEL [run] message key=value`. Every line goes through the redactor, so a secret that slips into a
 * message or an error still never reaches the output. Callers bind `runId` with `child`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.out ?? process.stdout;
  const pretty = options.format === "pretty" || (options.format !== "json" && out.isTTY === true);
  const redactor = options.redactor ?? processRedactor;
  const destination = {
    write(line: string) {
      const clean = redactor.redact(line);
      out.write(pretty ? prettyLine(clean) : clean);
    },
  };
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
    },
    destination,
  );
}

/** A short random id for this process; run ids are `<process id>-<n>` and the process's own lines use `-0`. */
export function newInstanceId(): string {
  return randomBytes(3).toString("hex");
}

function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, runId, ...rest } = entry;
  const clock = typeof time === "string" ? time.slice(11, 19) : "";
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${clock} ${String(level ?? "")
    .toUpperCase()
    .padEnd(5)} [${String(runId ?? "-")}] ${String(msg ?? "")}${fields ? ` ${fields}` : ""}\n`;
}
