import { createRequire } from "node:module";
import type * as Yaml from "yaml";

let loaded: typeof Yaml | undefined;

/**
 * The yaml package, loaded on first use: importing it costs every command ~0.05 s at start, and only a few read
 * or write YAML. Loaded with require so that the parsers using it stay synchronous.
 */
export function yaml(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return loaded;
}
