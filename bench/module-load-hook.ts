/**
 * Preload (`node --import ./bench/module-load-hook.ts`) for bench/rss-breakdown.ts: records every module the
 * process loads (ES modules and require()d CommonJS alike), in order, with its source size, and writes them as
 * JSON lines to the file named by ETCD_BACKUP_MODULE_LOG when the process exits. A measuring aid, never part of
 * the tool.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { registerHooks } from "node:module";

const out = process.env.ETCD_BACKUP_MODULE_LOG;
if (out) {
  const seen: { url: string; bytes: number }[] = [];
  registerHooks({
    load(url, context, nextLoad) {
      const result = nextLoad(url, context);
      const source = result.source;
      const bytes =
        source == null ? 0 : typeof source === "string" ? Buffer.byteLength(source) : source.byteLength;
      seen.push({ url, bytes });
      return result;
    },
  });
  process.on("exit", () => {
    appendFileSync(out, `${seen.map((s) => JSON.stringify(s)).join("\n")}\n`);
  });
}

/**
 * With ETCD_BACKUP_MEMORY_LOG set, samples process.memoryUsage() every 10 ms and, at exit, appends one JSON line:
 * the sample with the highest RSS (what the RSS was made of at the peak) and the largest heap and external seen.
 */
const memoryOut = process.env.ETCD_BACKUP_MEMORY_LOG;
if (memoryOut) {
  /** RssAnon and RssFile of /proc/self/status (Linux), KiB. */
  const rssKinds = () => {
    try {
      const status = readFileSync("/proc/self/status", "utf8");
      const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      return { anon: kib("RssAnon") * 1024, file: kib("RssFile") * 1024 };
    } catch {
      return undefined;
    }
  };
  let peak = process.memoryUsage();
  let peakKinds = rssKinds();
  let maxHeapUsed = peak.heapUsed;
  let maxHeapTotal = peak.heapTotal;
  let maxExternal = peak.external;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > peak.rss) {
      peak = m;
      peakKinds = rssKinds();
    }
    maxHeapUsed = Math.max(maxHeapUsed, m.heapUsed);
    maxHeapTotal = Math.max(maxHeapTotal, m.heapTotal);
    maxExternal = Math.max(maxExternal, m.external);
  };
  setInterval(sample, 10).unref();
  process.on("exit", () => {
    sample();
    appendFileSync(
      memoryOut,
      `${JSON.stringify({ peak, peakKinds, maxHeapUsed, maxHeapTotal, maxExternal })}\n`,
    );
  });
}
