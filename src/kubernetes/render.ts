import { yaml } from "../yaml.ts";

/**
 * Objects printed as `kubectl get -o json|yaml` prints them: keys in sorted order at every level (kubectl
 * prints through maps), two-space JSON, int64 beyond 2^53 exact. Several objects: a `v1 List` in JSON, a
 * multi-document stream in YAML.
 */

/** A copy of `value` with every object's keys sorted. */
export function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) out[k] = sortedKeys((value as Record<string, unknown>)[k]);
  return out;
}

/** JSON.rawJSON (Node 21+; not in the ES2023 library types tsc checks against). */
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

function exactIntegers(_key: string, v: unknown): unknown {
  return typeof v === "bigint" ? rawJson(v.toString()) : v;
}

export function toJson(object: unknown): string {
  return `${JSON.stringify(sortedKeys(object), exactIntegers, 2)}\n`;
}

/**
 * YAML 1.1 quoting, as kubectl's YAML (go-yaml) quotes: strings a 1.1 reader would take for something else
 * ("on", "yes", timestamps, octal-looking numbers) are quoted, so the text reads back as the same object in
 * every YAML parser, kubectl's included. Lines are never folded.
 */
export function toYaml(object: unknown): string {
  return yaml().stringify(sortedKeys(object), { version: "1.1", lineWidth: 0 });
}

/** Several objects: JSON as a `List` (as kubectl prints many), YAML as documents separated by `---`. */
export function renderObjects(objects: unknown[], format: "json" | "yaml"): string {
  if (format === "json")
    return toJson({ apiVersion: "v1", kind: "List", items: objects, metadata: { resourceVersion: "" } });
  return objects.map((o) => toYaml(o)).join("---\n");
}
