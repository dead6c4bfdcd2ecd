import { yaml } from "../yaml.ts";
import { setOwn } from "./message.ts";

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
  for (const k of Object.keys(value).sort())
    setOwn(out, k, sortedKeys((value as Record<string, unknown>)[k]));
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
 * YAML as kubectl (go-yaml) writes it: a string a YAML 1.1 reader would take for something else ("on",
 * "yes", "", timestamps, octal-looking and sexagesimal numbers) in double quotes, one that cannot be plain for
 * its characters ("*\/5 * * * *") in single quotes, so the text reads back as the same object in every
 * YAML parser, kubectl's included; sequences not indented under their key, lines never folded.
 */
export function toYaml(object: unknown): string {
  const y = yaml();
  const doc = new y.Document(sortedKeys(object), { version: "1.1" });
  y.visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== "string" || node.value.includes("\n")) return;
      if (readsAsOther(y, node.value)) node.type = "QUOTE_DOUBLE";
    },
  });
  return doc.toString({ lineWidth: 0, indentSeq: false, singleQuote: true });
}

/** Whether a YAML 1.1 reader takes `text`, written plain, for a value other than this string. */
function readsAsOther(y: ReturnType<typeof yaml>, text: string): boolean {
  // Only these can resolve to a non-string scalar (numbers, timestamps, booleans, null); skip the parse otherwise.
  if (text !== "" && !/^[-+.~0-9]/.test(text) && !/^(y|yes|n|no|true|false|on|off|null)$/i.test(text))
    return false;
  try {
    const read: unknown = y.parse(text, { version: "1.1" });
    // A sequence or map read back ("[a]") is a matter of characters, quoted by the writer's own rules as go-yaml does.
    return read !== text && (read === null || typeof read !== "object" || read instanceof Date);
  } catch {
    return false; // not plain YAML at all (`*/5 * * * *`): quoted by the writer's own rules
  }
}

/** Several objects: JSON as a `List` (as kubectl prints many), YAML as documents separated by `---`. */
export function renderObjects(objects: unknown[], format: "json" | "yaml"): string {
  if (format === "json")
    return toJson({ apiVersion: "v1", kind: "List", items: objects, metadata: { resourceVersion: "" } });
  return objects.map((o) => toYaml(o)).join("---\n");
}
