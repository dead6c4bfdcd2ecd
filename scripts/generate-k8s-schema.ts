/**
 * Writes src/kubernetes/schema/table.ts, the compact table the protobuf object decoder reads: for every message
 * of the Kubernetes API's generated.proto files, its fields' numbers, wire types and the JSON names and
 * omitempty/omitzero/pointer/inline facts of the Go types behind them (their `json:` and `protobuf:` struct
 * tags), plus the API group/version each proto package serves. Field numbers and names are facts of the wire
 * contract; nothing else is taken over.
 *
 * Usage: node scripts/generate-k8s-schema.ts          (the release pinned in scripts/fetch-k8s-api.sh)
 *        K8S_API_VERSION=v0.36.0 node scripts/generate-k8s-schema.ts
 * The modules come from the Go module proxy through scripts/fetch-k8s-api.sh.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const here = dirname(new URL(import.meta.url).pathname);
const out = join(here, "..", "src", "kubernetes", "schema", "table.ts");

const fetched = execFileSync(join(here, "fetch-k8s-api.sh"), { encoding: "utf8" });
const modules = new Map(
  fetched
    .trim()
    .split("\n")
    .map((l) => l.split("=") as [string, string]),
);
const apiDir = modules.get("k8s.io/api")!;
const release = `v1${apiDir.slice(apiDir.lastIndexOf("@v0") + 3)}`; // k8s.io/api v0.35.10 is Kubernetes v1.35.10

interface ProtoField {
  name: string;
  number: number;
  label: "optional" | "repeated" | "map";
  type: string; // scalar name or fully qualified message name (map: value type)
  keyType?: string;
}
interface ProtoMessage {
  fullName: string;
  pkg: string;
  fields: ProtoField[];
}
interface GoField {
  json: string;
  omitempty: boolean;
  omitzero: boolean;
  inline: boolean;
  pointer: boolean;
  skip: boolean;
}

const SCALARS = new Set(["string", "bool", "int32", "int64", "double", "float", "bytes", "uint32", "uint64"]);

function walk(dir: string, name: string, found: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "testdata" && e.name !== "vendor") walk(p, name, found);
    } else if (e.name === name) found.push(p);
  }
  return found;
}

/** Parses one generated.proto: package, go_package and messages (go-to-protobuf never nests them). */
function parseProto(text: string): { pkg: string; goPackage: string; messages: ProtoMessage[] } {
  const body = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(body)![1]!;
  const goPackage = /option\s+go_package\s*=\s*"([^"]+)"/.exec(body)![1]!;
  const messages: ProtoMessage[] = [];
  const re = /message\s+(\w+)\s*\{([^{}]*)\}/g;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const fields: ProtoField[] = [];
    for (const line of m[2]!.split(";")) {
      const t = line.trim();
      if (!t) continue;
      const map = /^map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)/.exec(t);
      if (map) {
        fields.push({ name: map[3]!, number: Number(map[4]), label: "map", keyType: map[1]!, type: map[2]! });
        continue;
      }
      const f = /^(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)/.exec(t);
      if (!f) throw new Error(`unparsed proto field in ${pkg}.${m[1]}: ${t}`);
      fields.push({
        name: f[3]!,
        number: Number(f[4]),
        label: f[1] === "repeated" ? "repeated" : "optional",
        type: f[2]!,
      });
    }
    messages.push({ fullName: `${pkg}.${m[1]}`, pkg, fields });
  }
  return { pkg, goPackage, messages };
}

interface GoPackage {
  structs: Map<string, Map<number, GoField>>;
  slices: Set<string>;
  /** `type X otherpkg.Y`: X's fields are Y's (by the import path of otherpkg). */
  aliases: Map<string, { importPath: string; name: string }>;
}

/** The Go structs of a package directory: per struct, its protobuf field numbers' JSON facts. */
function parseGoStructs(dir: string): GoPackage {
  const structs = new Map<string, Map<number, GoField>>();
  const slices = new Set<string>();
  const aliases = new Map<string, { importPath: string; name: string }>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".go") || file.endsWith("_test.go") || file.startsWith("zz_generated")) continue;
    if (file.startsWith("generated.") || file.includes("swagger_doc")) continue;
    const text = readFileSync(join(dir, file), "utf8");
    for (const m of text.matchAll(/^type (\w+) \[\](\w|\.)+\s*$/gm)) slices.add(m[1]!);
    const imports = new Map<string, string>();
    for (const m of text.matchAll(/^\s*(?:(\w+)\s+)?"(k8s\.io\/[^"]+)"\s*$/gm)) {
      imports.set(m[1] ?? m[2]!.split("/").pop()!, m[2]!);
    }
    for (const m of text.matchAll(/^type (\w+) (\w+)\.(\w+)\s*$/gm)) {
      const importPath = imports.get(m[2]!);
      if (importPath) aliases.set(m[1]!, { importPath, name: m[3]! });
    }
    for (const m of text.matchAll(/^type (\w+) struct \{\n([\s\S]*?)^\}/gm)) {
      const fields = new Map<number, GoField>();
      for (const raw of m[2]!.split("\n")) {
        const line = raw.trim();
        if (!line || line.startsWith("//")) continue;
        const tagged = /^(?:(\w+)\s+)?(\S+)\s+`([^`]*)`/.exec(line);
        if (!tagged) continue;
        const tags = tagged[3]!;
        const pb = /protobuf:"(\w+),(\d+)/.exec(tags);
        if (!pb) continue;
        const json = /json:"([^"]*)"/.exec(tags)?.[1] ?? "";
        const [name = "", ...opts] = json.split(",");
        fields.set(Number(pb[2]), {
          json: name || tagged[1] || tagged[2]!.replace(/^\*/, "").replace(/^\w+\./, ""),
          omitempty: opts.includes("omitempty"),
          omitzero: opts.includes("omitzero"),
          inline: opts.includes("inline"),
          pointer: tagged[2]!.startsWith("*"),
          skip: name === "-",
        });
      }
      structs.set(m[1]!, fields);
    }
  }
  return { structs, slices, aliases };
}

const packagesByDir = new Map<string, GoPackage>();
function goPackageAt(dir: string): GoPackage {
  let pkg = packagesByDir.get(dir);
  if (!pkg) {
    pkg = parseGoStructs(dir);
    packagesByDir.set(dir, pkg);
  }
  return pkg;
}

/** The directory of a Go import path inside the downloaded modules. */
function importDir(importPath: string): string | undefined {
  for (const [module, dir] of modules) {
    if (importPath === module || importPath.startsWith(`${module}/`))
      return join(dir, importPath.slice(module.length));
  }
  return undefined;
}

/** A struct by name in a package, following `type X otherpkg.Y` definitions. */
function goStruct(pkg: GoPackage | undefined, name: string): Map<number, GoField> | undefined {
  if (!pkg) return undefined;
  const direct = pkg.structs.get(name);
  if (direct) return direct;
  const alias = pkg.aliases.get(name);
  const dir = alias && importDir(alias.importPath);
  return dir ? goStruct(goPackageAt(dir), alias.name) : undefined;
}

/** Messages whose JSON form is not their fields' (custom MarshalJSON in the Go types). */
const SPECIAL: Record<string, string> = {
  "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "time",
  "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "microtime",
  "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "duration",
  "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "rawjson",
  "k8s.io.apimachinery.pkg.api.resource.Quantity": "quantity",
  "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "quantity",
  "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
  "k8s.io.apimachinery.pkg.runtime.RawExtension": "rawjson",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "rawjson",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON": "rawjson",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "schemaorarray",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray": "schemaorarray",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "schemaorbool",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool": "schemaorbool",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "schemaorstrings",
  "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray":
    "schemaorstrings",
};

const messages: ProtoMessage[] = [];
const goFacts = new Map<string, GoPackage>();
const groups: string[] = [];
for (const [module, dir] of modules) {
  for (const file of walk(dir, "generated.proto")) {
    if (file.includes("testapigroup")) continue;
    const parsed = parseProto(readFileSync(file, "utf8"));
    messages.push(...parsed.messages);
    const pkgDir = dirname(file);
    goFacts.set(parsed.pkg, goPackageAt(pkgDir));
    // The API group a package serves: `+groupName=` in its doc.go ("" is the core group).
    let docText = "";
    try {
      docText = readFileSync(join(pkgDir, "doc.go"), "utf8");
    } catch {}
    let registerText = "";
    try {
      registerText = readFileSync(join(pkgDir, "register.go"), "utf8");
    } catch {}
    const group = /\+groupName=([\w.-]*)/.exec(docText) ?? /const GroupName = "([\w.-]*)"/.exec(registerText);
    if (group) {
      const version = relative(dir, pkgDir).split("/").pop()!;
      groups.push(`${group[1] ? `${group[1]}/` : ""}${version}=${parsed.pkg}`);
    }
    void module;
  }
}
messages.sort((a, b) => a.fullName.localeCompare(b.fullName));
const index = new Map(messages.map((m, i) => [m.fullName, i]));

function typeCode(t: string, pkg: string): string {
  if (SCALARS.has(t))
    return {
      string: "s",
      bool: "b",
      int32: "i",
      int64: "l",
      double: "d",
      float: "f",
      bytes: "y",
      uint32: "u",
      uint64: "U",
    }[t]!;
  const full = t.startsWith(".") ? t.slice(1) : `${pkg}.${t}`;
  const i = index.get(full);
  if (i === undefined) throw new Error(`unknown message type ${t} in ${pkg}`);
  return String(i);
}

const lines: string[] = [];
let missingGo = 0;
for (const m of messages) {
  const short = m.fullName.slice(m.pkg.length + 1);
  const facts = goFacts.get(m.pkg);
  const struct = goStruct(facts, short);
  let special = SPECIAL[m.fullName] ?? "";
  if (!special && facts?.slices.has(short)) special = "array";
  const fields = m.fields.map((f) => {
    const go = struct?.get(f.number);
    if (!go && !special) {
      missingGo++;
      console.error(`no Go field for ${m.fullName} ${f.name}=${f.number}`);
    }
    const flags =
      (f.label === "repeated" ? "r" : "") +
      ((go?.omitempty ?? true) ? "o" : "") +
      (go?.omitzero ? "z" : "") +
      (go?.pointer ? "p" : "") +
      (go?.inline ? "n" : "") +
      (go?.skip ? "-" : "");
    const type =
      f.label === "map"
        ? `m${typeCode(f.keyType!, m.pkg)}.${typeCode(f.type, m.pkg)}`
        : typeCode(f.type, m.pkg);
    return `${f.number},${go?.json ?? f.name},${type},${flags}`;
  });
  lines.push(`${m.fullName}${special ? `:${special}` : ""}|${fields.join(";")}`);
}
if (missingGo > 0)
  console.error(
    `warning: ${missingGo} proto fields without a Go struct field (JSON name taken from the proto)`,
  );

groups.sort();
const text = `// GENERATED by scripts/generate-k8s-schema.ts from the generated.proto files and Go types of k8s.io/api,
// k8s.io/apimachinery, k8s.io/apiextensions-apiserver and k8s.io/kube-aggregator at Kubernetes ${release}.
// DO NOT EDIT: regenerate with \`node scripts/generate-k8s-schema.ts\`. Format: see schema/index.ts.

/** The Kubernetes release whose API definitions this table holds. */
export const SCHEMA_RELEASE = "${release}";

/** \`group/version=proto package\`, one a line ("v1" is the core group). */
export const GROUP_VERSIONS = \`${groups.join("\n")}\`;

/** One message a line: \`full.name[:special]|number,jsonName,type,flags;...\` (see schema/index.ts). */
export const MESSAGES = \`${lines.join("\n")}\`;
`;
writeFileSync(out, text);
console.log(
  `wrote ${relative(process.cwd(), out)}: ${messages.length} messages, ${groups.length} group versions, ${text.length} bytes (Kubernetes ${release})`,
);
