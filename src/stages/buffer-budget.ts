import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ByteCounter } from "./count.ts";

/**
 * Keeps the Buffers a streaming job has finished with from piling up when the process runs under a tight memory
 * limit (issue 22: a save in a 128 MiB pod).
 *
 * A snapshot crosses the stages as fresh Buffers (the source's chunks, zstd frames, age chunks): about three times
 * its own size in all. Their memory lives outside V8's heap, and V8 frees it only when a full GC finds the Buffer
 * objects dead; for outside memory it starts one only after ~64 MiB more of it since the last. So a save's dead
 * Buffers reached 50-75 MiB where the live ones are 10-25 MiB (measured with a GC before every sample;
 * bench/RESULTS.md). This asks for a full GC when the process's ArrayBuffer memory has grown `headroom` past
 * what the last GC left (and is over `budget`), checked every few MiB of the stream.
 *
 * Those GCs cost CPU (10-18 ms each, ~20 per 200 MB: a save from a file took 20-30% longer), so the budget is
 * only kept where memory is scarce: when the process's cgroup limit (`process.constrainedMemory()`, a pod's
 * `resources.limits.memory`) is at most `ACTIVE_AT_OR_BELOW_BYTES`. Elsewhere V8 is left to its own pace.
 *
 * When active it turns on V8's `gc` at run time (`--expose-gc` through `v8.setFlagsFromString`, then read from a
 * new context); a command-line `--expose-gc` would change V8's flag hash at start and make the standalone binary
 * reject its built-in code cache. It caps nothing: a job that needs more memory keeps it.
 */
export class BufferBudget {
  private readonly budget: number;
  private readonly headroom: number;
  private readonly every: number;
  private next: number;
  private limit: number;
  private live = Number.POSITIVE_INFINITY;
  private readonly collect: (() => void) | undefined;
  private readonly arrayBuffers: () => number;
  /** How many collections it asked for. */
  collections = 0;

  constructor(
    options: {
      budgetBytes?: number;
      headroomBytes?: number;
      checkEveryBytes?: number;
      /** The process's memory limit, bytes (default: its cgroup's); 0 or above the threshold: inactive. */
      memoryLimitBytes?: number;
      /** For tests: the collector (default: the exposed `gc`, if any) and the memory reading. */
      collect?: () => void;
      arrayBuffers?: () => number;
    } = {},
  ) {
    this.budget = options.budgetBytes ?? DEFAULT_BUDGET_BYTES;
    this.headroom = options.headroomBytes ?? DEFAULT_HEADROOM_BYTES;
    this.every = options.checkEveryBytes ?? DEFAULT_CHECK_EVERY_BYTES;
    this.next = this.every;
    this.limit = this.budget;
    const memoryLimit = options.memoryLimitBytes ?? process.constrainedMemory();
    const scarce = memoryLimit > 0 && memoryLimit <= ACTIVE_AT_OR_BELOW_BYTES;
    this.collect = scarce ? (options.collect ?? exposedGc()) : undefined;
    this.arrayBuffers = options.arrayBuffers ?? (() => process.memoryUsage().arrayBuffers);
  }

  /** Whether it will ask for GCs at all (a tight memory limit, and `gc` exposed). */
  get active(): boolean {
    return this.collect !== undefined;
  }

  /** Called with the running total of bytes the stream has passed. */
  passed(total: number): void {
    if (this.collect === undefined || total < this.next) return;
    this.next = total + this.every;
    if (this.arrayBuffers() <= this.limit) return;
    this.collections++;
    this.collect();
    // What is left is live (S3 part buffers, pieces in flight): the next GC waits until `headroom` more is dead.
    // Read at once, it may still count Buffers V8 frees on a background thread, so the lowest reading so far is
    // taken for what is live.
    this.live = Math.min(this.live, this.arrayBuffers());
    this.limit = Math.max(this.budget, this.live + this.headroom);
  }
}

/**
 * A streaming job's first byte counter, which also keeps the job's dead Buffers within a budget (under a tight
 * memory limit): `onBytes` gets the running total as a plain ByteCounter's would.
 */
export function budgetedByteCounter(onBytes?: (total: number) => void): ByteCounter {
  const budget = new BufferBudget();
  return new ByteCounter((total) => {
    budget.passed(total);
    onBytes?.(total);
  });
}

/** The live Buffers of a save to a directory are ~10 MiB after a GC; to S3, 20-25 MiB (its part buffers). */
export const DEFAULT_BUDGET_BYTES = 24 * 1024 * 1024;
export const DEFAULT_HEADROOM_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CHECK_EVERY_BYTES = 4 * 1024 * 1024;
/** A pod limited to this or less is where 20 MiB decide between a backup and an OOM kill. */
export const ACTIVE_AT_OR_BELOW_BYTES = 512 * 1024 * 1024;

let runtimeGc: (() => void) | null | undefined;

/** V8's full GC as a function: `globalThis.gc` when Node was started with it, else exposed now (once). */
function exposedGc(): (() => void) | undefined {
  const given = (globalThis as { gc?: unknown }).gc;
  if (typeof given === "function") return () => (given as () => void)();
  if (runtimeGc === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      const gc = runInNewContext("gc") as unknown;
      runtimeGc = typeof gc === "function" ? () => (gc as () => void)() : null;
    } catch {
      runtimeGc = null;
    }
  }
  return runtimeGc ?? undefined;
}
