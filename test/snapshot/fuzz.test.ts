/**
 * Damaged snapshots never give a wrong answer silently. A real etcd's snapshot is damaged thousands of ways
 * (bytes flipped, the file cut short, pages swapped, zeroed, duplicated or filled with garbage, meta pages
 * hit), seeded and reproducible, and read the way `get`, `inspect` and `diff` read: trailer proof first, then
 * the bbolt reader, whole and page by page. Each case must end in the right values, or in one plain line
 * naming the problem: no stack-trace error types (TypeError, RangeError), no multi-line message, no hang.
 * A file without etcd's trailer cannot be proven; there the reader may answer (with the warning the CLI
 * prints), but still only with one-line errors. Reproduce a case with ETCD_BACKUP_TEST_SEED=<seed>.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BoltDb } from "../../src/bbolt/db.ts";
import { proveTrailer } from "../../src/mvcc/trailer.ts";
import { getObjects } from "../../src/snapshot/get.ts";
import { inspectSnapshot } from "../../src/snapshot/inspect.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { startCorpusEtcd } from "./corpus.ts";
import { type Dump, saveSnapshot, snapshotTruth, writeShape } from "./differential.ts";

const CASES = 2000;
const PAGE = 4096;
const baseSeed = testSeed(7_2026_11);

type Outcome =
  | { kind: "answer"; trailer: "verified" | "absent"; values: Map<string, Buffer> }
  | { kind: "error"; error: unknown };

/** Reads a (possibly damaged) snapshot as the CLI's readers do, catching what is thrown. */
async function readAsCli(bytes: Buffer, file: string | null, keys: string[]): Promise<Outcome> {
  try {
    const trailer = await proveTrailer(
      file ? { path: file, size: bytes.length } : { buffer: bytes, size: bytes.length },
    );
    const db = file ? BoltDb.openFile(file) : new BoltDb(bytes);
    try {
      const found = getObjects(db, keys);
      inspectSnapshot(db);
      const values = new Map<string, Buffer>();
      for (const [k, o] of found) values.set(k, o.value);
      return { kind: "answer", trailer, values };
    } finally {
      db.close();
    }
  } catch (error) {
    return { kind: "error", error };
  }
}

/** One seeded way of damaging `file` (which may carry a 32-byte trailer after its pages). */
function damage(input: Buffer, rng: SeededRandom): { bytes: Buffer; what: string } {
  const bytes = Buffer.from(input);
  const pages = Math.floor(bytes.length / PAGE);
  const page = () => rng.int(0, pages - 1);
  switch (rng.int(0, 7)) {
    case 0: {
      const n = rng.int(1, 8);
      const at: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = rng.int(0, bytes.length - 1);
        bytes[p] = bytes[p]! ^ (1 << rng.int(0, 7));
        at.push(p);
      }
      return { bytes, what: `flipped bits at ${at.join(",")}` };
    }
    case 1: {
      const len = rng.int(0, bytes.length - 1);
      return { bytes: bytes.subarray(0, len), what: `cut to ${len} bytes` };
    }
    case 2: {
      const [a, b] = [page(), page()];
      const tmp = Buffer.from(bytes.subarray(a * PAGE, (a + 1) * PAGE));
      bytes.copy(bytes, a * PAGE, b * PAGE, (b + 1) * PAGE);
      tmp.copy(bytes, b * PAGE);
      return { bytes, what: `swapped pages ${a} and ${b}` };
    }
    case 3: {
      const a = page();
      bytes.fill(0, a * PAGE, (a + 1) * PAGE);
      return { bytes, what: `zeroed page ${a}` };
    }
    case 4: {
      const [a, b] = [page(), page()];
      bytes.copy(bytes, a * PAGE, b * PAGE, (b + 1) * PAGE);
      return { bytes, what: `page ${b} copied over page ${a}` };
    }
    case 5: {
      const a = page();
      rng.bytes(PAGE).copy(bytes, a * PAGE);
      return { bytes, what: `garbage in page ${a}` };
    }
    case 6: {
      // Page headers and element tables: where structure lives.
      const a = page();
      const p = a * PAGE + rng.int(0, 16 + 16 * 8);
      bytes[p] = rng.int(0, 255);
      return { bytes, what: `header byte ${p} of page ${a} set` };
    }
    default: {
      const m = rng.int(0, 1);
      const p = m * PAGE + rng.int(0, 80);
      bytes[p] = rng.int(0, 255);
      return { bytes, what: `meta page ${m} byte ${p} set` };
    }
  }
}

describe(`damaged snapshots: the right values or one line, never a wrong answer silently (seed ${baseSeed})`, () => {
  let dir: string;
  let pristine: Buffer;
  let truth: Dump;
  let keys: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-fuzz-"));
    const etcd = await startCorpusEtcd();
    let path: string;
    try {
      const rng = new SeededRandom(baseSeed);
      let n = 0;
      await writeShape(etcd, rng, {
        keys: 300,
        size: () => (n++ % 40 === 39 ? rng.int(5000, 20000) : rng.int(0, 900)),
        leases: 1,
        rewrites: 4,
        deletes: 10,
      });
      path = await saveSnapshot(etcd, dir, "base");
    } finally {
      await etcd.destroy();
    }
    pristine = await readFile(path);
    truth = await snapshotTruth(path);
    keys = [...truth.keys.keys()].map((k) => Buffer.from(k, "latin1").toString("utf8"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const withTrailer of [true, false]) {
    test(`${CASES} damaged copies ${withTrailer ? "with" : "without"} etcd's sha256 trailer`, async () => {
      const input = withTrailer ? pristine : pristine.subarray(0, pristine.length - 32);
      let answered = 0;
      let refused = 0;
      const messages = new Map<string, number>();
      for (let i = 0; i < CASES; i++) {
        const seed = baseSeed * 7919 + i + (withTrailer ? 0 : 1_000_000);
        const rng = new SeededRandom(seed);
        const { bytes, what } = damage(input, rng);
        const where = `case seed ${seed} (${what}); rerun the suite with ETCD_BACKUP_TEST_SEED=${baseSeed}`;
        let file: string | null = null;
        if (i % 4 === 0) {
          file = join(dir, "case.db");
          await writeFile(file, bytes);
        }
        const out = await readAsCli(bytes, file, keys);
        if (out.kind === "error") {
          refused++;
          const err = out.error;
          assert.ok(err instanceof Error, `${where}: threw a non-Error ${String(err)}`);
          assert.equal(
            err.constructor,
            Error,
            `${where}: ${err.constructor.name} is a crash, not a message: ${err.message}\n${err.stack}`,
          );
          assert.ok(
            err.message.length > 0 && !err.message.includes("\n"),
            `${where}: not one line: ${err.message}`,
          );
          const shape = err.message.replace(/\d+/g, "N");
          messages.set(shape, (messages.get(shape) ?? 0) + 1);
          continue;
        }
        answered++;
        if (out.trailer === "absent" && !withTrailer) continue; // the CLI warns: nothing can be proven
        assert.equal(out.trailer, "verified", where);
        for (const key of keys) {
          const want = truth.keys.get(Buffer.from(key).toString("latin1"))!.value;
          assert.ok(out.values.get(key)?.equals(want), `${where}: ${key} read wrong with a verified trailer`);
        }
      }
      console.log(
        `${withTrailer ? "with" : "without"} trailer: ${answered} answered, ${refused} refused with one line; ` +
          `messages: ${[...messages]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 8)
            .map(([m, c]) => `${c}x ${m}`)
            .join(" | ")}`,
      );
      assert.ok(process.memoryUsage().rss < 1.5 * 1024 ** 3, "memory grew without bound");
    });
  }
});
