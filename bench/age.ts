// Throughput and peak memory of our age encryption against the Go age CLI, in one run.
//   node_modules/.bin/node bench/age.ts [--size MB] [--runs N]
// Each tool runs as its own process under /usr/bin/time -v (peak RSS); wall time is measured
// around the process, so both include their start-up. Best of N runs is reported.
// Our side runs as the published CLI would: plain JavaScript (src/age type-stripped into a temp
// dir), reading the input file into one reused 1 MiB buffer and writing with fs.createWriteStream.
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { stripTypeScriptTypes } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const exec = promisify(execFile);
const { values } = parseArgs({
  options: { size: { type: "string", default: "200" }, runs: { type: "string", default: "3" } },
});
const sizeMB = Number(values.size);
const runs = Number(values.runs);
const NODE = process.execPath;
const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;

// The driver our side runs: stream a file through encryption or decryption to another file.
const DRIVER = `
import { closeSync, createWriteStream, openSync, readFileSync, readSync } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createDecryptStream, createEncryptStream, parseIdentities, parseRecipient } from "./age/index.js";
const [mode, input, output, key] = process.argv.slice(2);
const transform = mode === "encrypt"
  ? createEncryptStream([parseRecipient(key)])
  : createDecryptStream(parseIdentities(readFileSync(key, "utf8")));
const done = pipeline(transform, createWriteStream(output));
const fd = openSync(input, "r");
const buf = Buffer.allocUnsafe(1 << 20);
for (;;) {
  const n = readSync(fd, buf);
  if (n === 0) break;
  // The write callback fires once the chunk is consumed (and waits on backpressure): reuse is safe.
  await new Promise((resolve, reject) => transform.write(buf.subarray(0, n), (e) => (e ? reject(e) : resolve())));
}
closeSync(fd);
transform.end();
await done;
if (process.env.REPORT_RSS) process.stderr.write("maxrss_kib=" + process.resourceUsage().maxRSS + "\\n");
`;

// Type-strips src/age and what it imports into `dir`, with .ts specifiers rewritten to .js.
async function buildJs(dir: string): Promise<string> {
  const files = [
    "errors.ts",
    ...(await readdir(join(SRC, "age"))).filter((f) => f.endsWith(".ts")).map((f) => `age/${f}`),
  ];
  await mkdir(join(dir, "age"), { recursive: true });
  for (const f of files) {
    const js = stripTypeScriptTypes(await readFile(join(SRC, f), "utf8")).replace(
      /(from\s+"\.{1,2}\/[^"]+)\.ts"/g,
      '$1.js"',
    );
    await writeFile(join(dir, f.replace(/\.ts$/, ".js")), js);
  }
  const driver = join(dir, "driver.mjs");
  await writeFile(driver, DRIVER);
  return driver;
}

interface Result {
  seconds: number;
  rssMiB: number;
}

function run(command: string, args: string[]): Promise<Result> {
  const argv = TIME ? [TIME, "-v", command, ...args] : [command, ...args];
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...(TIME ? {} : { REPORT_RSS: "1" }) },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const seconds = (performance.now() - start) / 1000;
      if (code !== 0) return reject(new Error(`${command} exited ${code}: ${stderr.slice(-2000)}`));
      const kib =
        /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ??
        /maxrss_kib=(\d+)/.exec(stderr)?.[1];
      resolve({ seconds, rssMiB: Number(kib ?? Number.NaN) / 1024 });
    });
  });
}

async function best(command: string, args: string[]): Promise<Result> {
  let out: Result | null = null;
  for (let i = 0; i < runs; i++) {
    const r = await run(command, args);
    const worstRss = Math.max(r.rssMiB, out?.rssMiB ?? 0);
    if (!out || r.seconds < out.seconds) out = { seconds: r.seconds, rssMiB: worstRss };
    else out.rssMiB = worstRss;
  }
  return out!;
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

const dir = await mkdtemp(join(tmpdir(), "age-bench-"));
try {
  const plain = join(dir, "plain");
  // Random-ish: 1 MiB of random bytes, each copy perturbed, so nothing compresses or dedups.
  const block = randomBytes(1 << 20);
  await pipeline(
    (function* () {
      for (let i = 0; i < sizeMB; i++) {
        block.writeUInt32LE(i, (i * 4099) % (block.length - 4));
        yield Buffer.from(block);
      }
    })(),
    createWriteStream(plain),
  );
  const bytes = (await stat(plain)).size;
  const key = join(dir, "key.txt");
  await exec("/usr/bin/age-keygen", ["-o", key]);
  const pub = (await exec("/usr/bin/age-keygen", ["-y", key])).stdout.trim();
  const driver = await buildJs(join(dir, "js"));
  const ours = (mode: string, input: string, output: string, k: string) =>
    best(NODE, [driver, mode, input, output, k]);

  const ageEnc = await best("/usr/bin/age", ["-r", pub, "-o", join(dir, "age.age"), plain]);
  const oursEnc = await ours("encrypt", plain, join(dir, "ours.age"), pub);
  const ageDec = await best("/usr/bin/age", [
    "-d",
    "-i",
    key,
    "-o",
    join(dir, "age.out"),
    join(dir, "ours.age"),
  ]);
  const oursDec = await ours("decrypt", join(dir, "age.age"), join(dir, "ours.out"), key);

  // Each tool decrypted the other's output: both must give back the input.
  const want = await sha256(plain);
  for (const out of ["age.out", "ours.out"]) {
    if ((await sha256(join(dir, out))) !== want) throw new Error(`${out} differs from the input`);
  }

  const mb = bytes / 1e6;
  const rows: [string, string, Result][] = [
    ["encrypt", "age", ageEnc],
    ["encrypt", "ours", oursEnc],
    ["decrypt", "age", ageDec],
    ["decrypt", "ours", oursDec],
  ];
  console.log(
    `age v1 X25519, ${mb.toFixed(0)} MB random input, best of ${runs} (peak RSS: worst), node ${process.version}`,
  );
  console.log("op       tool   seconds    MB/s   peak RSS MiB   throughput ours/age");
  for (const [op, tool, r] of rows) {
    const age = op === "encrypt" ? ageEnc : ageDec;
    const ratio = tool === "ours" ? (age.seconds / r.seconds).toFixed(2) + "x" : "";
    console.log(
      `${op.padEnd(8)} ${tool.padEnd(6)} ${r.seconds.toFixed(3).padStart(7)} ${(mb / r.seconds).toFixed(0).padStart(7)} ${r.rssMiB.toFixed(1).padStart(14)}   ${ratio}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
