import { GROUP_VERSIONS, MESSAGES, SCHEMA_RELEASE } from "./table.ts";

/**
 * The Kubernetes API's protobuf messages, from the generated table (table.ts, written by
 * scripts/generate-k8s-schema.ts). A message line is `full.name[:special]|field;field...`, a field
 * `number,jsonName,type,flags`:
 * - type: `s` string, `b` bool, `i` int32, `l` int64, `u` uint32, `U` uint64, `d` double, `f` float,
 *   `y` bytes, a number (the index of a message line), or `mK.V` (a map from K to V);
 * - flags: `r` repeated, `o` omitempty, `z` omitzero, `p` a Go pointer, `n` inlined in the parent's JSON,
 *   `-` not in the JSON (`json:"-"`);
 * - special: how a message with a Go MarshalJSON of its own is shown (time, microtime, duration, quantity,
 *   intorstring, rawjson, array, schemaorarray, schemaorbool, schemaorstrings).
 */

export type Scalar = "s" | "b" | "i" | "l" | "u" | "U" | "d" | "f" | "y";
export type FieldType = Scalar | Message;

export interface Field {
  number: number;
  json: string;
  type: FieldType;
  /** For a map field: its key type (`type` is the value's). */
  mapKey?: Scalar;
  repeated: boolean;
  omitempty: boolean;
  omitzero: boolean;
  pointer: boolean;
  inline: boolean;
  skip: boolean;
}

export interface Message {
  name: string;
  special: string;
  fields: Field[];
  byNumber: Map<number, Field>;
}

export { SCHEMA_RELEASE };

let messages: Message[] | null = null;
let byName: Map<string, Message> | null = null;
let groupPackages: Map<string, string> | null = null;

function load(): Message[] {
  if (messages) return messages;
  const lines = MESSAGES.split("\n");
  const list: Message[] = lines.map((line) => {
    const bar = line.indexOf("|");
    const [name, special = ""] = line.slice(0, bar).split(":") as [string, string?];
    return { name, special, fields: [], byNumber: new Map() };
  });
  const typeOf = (code: string): FieldType => (/^\d/.test(code) ? list[Number(code)]! : (code as Scalar));
  lines.forEach((line, i) => {
    const body = line.slice(line.indexOf("|") + 1);
    if (!body) return;
    const m = list[i]!;
    for (const spec of body.split(";")) {
      const [number, json, type, flags] = spec.split(",") as [string, string, string, string];
      const field: Field = {
        number: Number(number),
        json,
        type: typeOf(type.startsWith("m") ? type.slice(type.indexOf(".") + 1) : type),
        repeated: flags.includes("r"),
        omitempty: flags.includes("o"),
        omitzero: flags.includes("z"),
        pointer: flags.includes("p"),
        inline: flags.includes("n"),
        skip: flags.includes("-"),
      };
      if (type.startsWith("m")) field.mapKey = type.slice(1, type.indexOf(".")) as Scalar;
      m.fields.push(field);
      m.byNumber.set(field.number, field);
    }
  });
  messages = list;
  return list;
}

/** A message by its full protobuf name (`k8s.io.api.apps.v1.Deployment`). */
export function messageNamed(name: string): Message | undefined {
  byName ??= new Map(load().map((m) => [m.name, m]));
  return byName.get(name);
}

/**
 * The message of an object of `kind` in `apiVersion` (`apps/v1`, `v1`): the kind in the proto package of
 * its group version, else in meta/v1 (Status, WatchEvent and the option kinds every group version serves).
 */
export function messageForKind(apiVersion: string, kind: string): Message | undefined {
  groupPackages ??= new Map(GROUP_VERSIONS.split("\n").map((l) => l.split("=") as [string, string]));
  const pkg = groupPackages.get(apiVersion);
  return (
    (pkg ? messageNamed(`${pkg}.${kind}`) : undefined) ??
    messageNamed(`k8s.io.apimachinery.pkg.apis.meta.v1.${kind}`)
  );
}

/** The group versions the table knows, with their proto packages. */
export function groupVersions(): Map<string, string> {
  messageForKind("", "");
  return new Map(groupPackages);
}
