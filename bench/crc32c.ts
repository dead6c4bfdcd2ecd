/**
 * CRC-32C speed: the JavaScript slicing-by-8 loop against crc32cUpdate (WebAssembly for ranges of 256 bytes
 * and more, src/mvcc/crc32c.ts), on the same buffer, whole and in pieces of several sizes, best CPU time of
 * --runs; crc32cUpdate both on an ordinary buffer (copied into the WebAssembly memory piece by piece) and on
 * the same bytes in crc32cMemory (hashed in place, as status hashes the file reader's windows). All must give
 * the same checksum, or the bench fails. The buffer is a bench snapshot when one is
 * cached in the temp directory (bench/k8s-data.ts builds them), else --mb of seeded bytes.
 *
 *   node_modules/.bin/node bench/crc32c.ts [--file PATH] [--mb 200] [--runs 5]
 */
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { crc32cMemory, crc32cUpdate, jsUpdate } from "../src/mvcc/crc32c.ts";

const { values } = parseArgs({
  options: {
    file: { type: "string" },
    mb: { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
  },
});

function seeded(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let a = 0x12345678;
  for (let i = 0; i + 4 <= bytes; i += 4) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.writeUInt32LE((t ^ (t >>> 14)) >>> 0, i);
  }
  return out;
}

const cached = join(tmpdir(), "etcd-backup-bench-large-values-v1-200MB.db");
const file = values.file ?? (existsSync(cached) ? cached : undefined);
const data = file ? readFileSync(file) : seeded(Number(values.mb) * 1e6);
const runs = Number(values.runs);
console.log(
  `${(data.length / 1e6).toFixed(1)} MB of ${file ?? "seeded bytes"}; best CPU time of ${runs} runs`,
);

// The same bytes in CRC-32C memory, hashed where they lie (as status hashes the bbolt reader's windows).
const inPlace = crc32cMemory(data.length);
inPlace?.set(data);

type Crc = (crc: number, buf: Uint8Array, start: number, end: number) => number;
function timed(fn: Crc, piece: number, data: Uint8Array): { ms: number; crc: number } {
  let best = Number.POSITIVE_INFINITY;
  let crc = 0;
  for (let r = 0; r < runs; r++) {
    const before = process.cpuUsage();
    crc = 0;
    for (let s = 0; s < data.length; s += piece) crc = fn(crc, data, s, Math.min(data.length, s + piece));
    const used = process.cpuUsage(before);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return { ms: best, crc };
}

console.log(
  "| piece | JavaScript ms | crc32cUpdate ms (copied in) | speed-up | in crc32cMemory ms | speed-up | same checksum |",
);
console.log("|---:|---:|---:|---:|---:|---:|---|");
let same = true;
for (const piece of [data.length, 1 << 20, 32768, 4096, 1500, 512, 256, 128, 64]) {
  const js = timed(jsUpdate, piece, data);
  const ours = timed(crc32cUpdate, piece, data);
  const there = inPlace ? timed(crc32cUpdate, piece, inPlace) : null;
  const agree = js.crc === ours.crc && (there === null || there.crc === js.crc);
  same &&= agree;
  const label = piece === data.length ? "whole" : String(piece);
  const inPlaceCells = there ? `${there.ms.toFixed(0)} | ${(js.ms / there.ms).toFixed(2)}x` : "- | -";
  console.log(
    `| ${label} | ${js.ms.toFixed(0)} | ${ours.ms.toFixed(0)} | ${(js.ms / ours.ms).toFixed(2)}x | ${inPlaceCells} | ${agree ? "yes" : "NO"} |`,
  );
}
if (!same) {
  console.error("checksums differ");
  process.exitCode = 1;
}
