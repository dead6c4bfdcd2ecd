/**
 * What the put-path benches (bench/s3.ts, bench/azure-blob.ts, bench/gcs.ts) share: their arguments, the data
 * they upload, the child process each upload runs in (so its peak RSS is its own), and the table they print.
 * Each bench keeps its own servers, uploaders and checks.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";

export const MB = 1_000_000;
export const MiB = 1024 * 1024;

/** The size of one piece of an upload, under the store's own name for it. */
export interface PieceOption {
  name: "part-size" | "block-size" | "chunk-size";
  /** MiB when not given. */
  defaultMiB: string;
}

export interface PutPathArgs {
  /** --size as given (MB), as a number of MB, and in bytes. */
  size: string;
  sizeMB: number;
  sizeBytes: number;
  /** The piece size as given (MiB), and in bytes. */
  piece: string;
  pieceBytes: number;
  /** --concurrency, for a bench that takes it (1 otherwise). */
  concurrency: number;
  /** Set in a child process: which upload to run, and where to. */
  child: string | undefined;
  endpoint: string | undefined;
  /** The arguments above as a child process is given them. */
  forward: string[];
}

/**
 * Reads `[--size MB] [--<piece> MiB] [--concurrency N]` (the last only `withConcurrency`) and the `--child KIND
 * --endpoint URL` a bench gives its own child processes.
 */
export function putPathArgs(piece: PieceOption, withConcurrency: boolean): PutPathArgs {
  const { values } = parseArgs({
    options: {
      size: { type: "string", default: "200" },
      [piece.name]: { type: "string", default: piece.defaultMiB },
      ...(withConcurrency ? { concurrency: { type: "string", default: "4" } } : {}),
      child: { type: "string" },
      endpoint: { type: "string" },
    },
  });
  const given = values as Record<string, string | undefined>;
  const size = given.size ?? "200";
  const pieceMiB = given[piece.name] ?? piece.defaultMiB;
  const concurrency = Number(given.concurrency ?? "1");
  return {
    size,
    sizeMB: Math.round(Number(size) * MB) / MB,
    sizeBytes: Math.round(Number(size) * MB),
    piece: pieceMiB,
    pieceBytes: Math.round(Number(pieceMiB) * MiB),
    concurrency,
    child: given.child,
    endpoint: given.endpoint,
    forward: [
      "--size",
      size,
      `--${piece.name}`,
      pieceMiB,
      ...(withConcurrency ? ["--concurrency", String(concurrency)] : []),
    ],
  };
}

/** `total` bytes of incompressible data, made from one random MiB so generating it costs next to nothing. */
export function incompressible(total: number): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
}

/** One uploader's figures, as its child process reports them. */
export interface UploadFigures {
  seconds: number;
  maxRssKiB: number;
}

/** In a child process: times `upload` and writes its figures, with the process's peak RSS, to stdout. */
export async function reportUpload(upload: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await upload();
  const seconds = (performance.now() - started) / 1000;
  const figures: UploadFigures = { seconds, maxRssKiB: process.resourceUsage().maxRSS };
  process.stdout.write(JSON.stringify(figures));
}

/** Runs a command to its end (fed `stdin` when given); rejects with the end of its stderr if it fails. */
export async function run(
  cmd: string,
  args: string[],
  options: { stdin?: Readable; env?: NodeJS.ProcessEnv; name?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  const { stdin } = options;
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
      ...(options.env ? { env: options.env } : {}),
    });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (d: Buffer) => {
      stdout += d;
    });
    p.stderr?.on("data", (d: Buffer) => {
      stderr += d;
    });
    if (stdin && p.stdin) stdin.pipe(p.stdin);
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0
        ? resolve({ stdout, stderr })
        : reject(new Error(`${options.name ?? cmd} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

/** Runs this bench's script again as a child (`args` after Node) and returns the figures it reports. */
export async function runChild(args: string[], env?: NodeJS.ProcessEnv): Promise<UploadFigures> {
  const { stdout } = await run(process.execPath, args, { ...(env ? { env } : {}), name: "child" });
  return JSON.parse(stdout) as UploadFigures;
}

/** The uploaders' figures, in the order they ran, and the table of them. */
export class UploadTable {
  private readonly rows: ({ name: string } & UploadFigures)[] = [];

  add(name: string, figures: UploadFigures): void {
    this.rows.push({ name, ...figures });
  }

  /** One row per uploader: seconds, MB/s (none for a baseline) and peak RSS; names padded to `nameWidth`. */
  print(sizeBytes: number, nameWidth: number): void {
    const mb = sizeBytes / MB;
    console.log(
      `${"uploader".padEnd(nameWidth)} ${"seconds".padStart(8)} ${"MB/s".padStart(7)} ${"peak RSS MiB".padStart(14)}`,
    );
    for (const r of this.rows) {
      console.log(
        `${r.name.padEnd(nameWidth)} ${r.seconds.toFixed(2).padStart(8)} ` +
          `${(r.name.endsWith("baseline") ? "-" : (mb / r.seconds).toFixed(1)).padStart(7)} ` +
          `${(r.maxRssKiB / 1024).toFixed(0).padStart(14)}`,
      );
    }
  }
}
