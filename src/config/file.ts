import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { Hinted, UsageError } from "../errors.ts";

/**
 * Reads a YAML (or JSON) settings file for the daemon: a mapping whose keys are the flags' names, in camelCase or
 * as written on the command line (`keep-last` and `keepLast` both mean `--keep-last`); `no-encrypt: true` means
 * `encrypt: false`. Returns the mapping with camelCase keys, nested `s3` included; validation is
 * `parseDaemonConfig`'s. Throws `UsageError` for a file that is not a YAML mapping.
 */
export async function readSettingsFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Hinted(
      `cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      "check --config",
    );
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    // The YAML error names a line and column; never the file's content (it may hold a password).
    const e = err as { linePos?: { line: number; col: number }[] };
    const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "";
    throw new UsageError(`--config ${path} is not valid YAML${at}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(
      `--config ${path} must be a mapping of settings`,
      "write `schedule: ...`, `to: ...` lines",
    );
  }
  return camelKeys(doc as Record<string, unknown>, true);
}

function camelKeys(obj: Record<string, unknown>, top: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    let key = k.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    let value = v;
    if (top && key === "noEncrypt") {
      key = "encrypt";
      value = !(v === true || String(v).toLowerCase() === "true");
    }
    if (
      top &&
      (key === "s3" || key === "gcs") &&
      value &&
      typeof value === "object" &&
      !Array.isArray(value)
    ) {
      value = camelKeys(value as Record<string, unknown>, false);
    }
    out[key] = value;
  }
  return out;
}
