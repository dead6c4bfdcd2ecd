import { chooseMeta, type Meta, readMetas } from "./meta.ts";
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  ELEMENT_SIZE,
  FREELIST_PAGE,
  LEAF_PAGE,
  NO_FREELIST,
  PAGE_HEADER_SIZE,
  pageTypeName,
  readPageHeader,
  readU32,
  readU64,
} from "./page.ts";
import type { ByteSource } from "./page-source.ts";

/** One problem found in a snapshot. `page` names the page when the problem belongs to one. */
export interface Finding {
  severity: "error" | "warning";
  message: string;
  page?: number;
}

/** Past this many findings the file is plainly broken; more lines would only bury the first ones. */
const MAX_FINDINGS = 200;

/**
 * Checks the bbolt database in the first `dataSize` bytes of `source`: both meta pages, and the page tree of
 * the meta in use (each page reachable once or free, ids under the high-water mark, keys strictly sorted
 * within and across pages and consistent with branch separators, overflow within bounds, freelist
 * consistent). Adds the problems found to `findings` and returns them (at most MAX_FINDINGS). Never throws on
 * corrupt input.
 */
export function checkDatabase(source: ByteSource, dataSize: number, findings: Finding[]): Finding[] {
  const metas = readMetas(source.view(0, Math.min(dataSize, META_PROBE)));
  let meta: Meta;
  try {
    meta = chooseMeta(metas);
  } catch {
    for (const m of metas)
      findings.push({ severity: "error", page: m.page, message: `meta page ${m.page}: ${m.problem}` });
    return findings;
  }
  for (const m of metas) {
    if (m.problem !== null)
      findings.push({
        severity: "warning",
        page: m.page,
        message: `meta page ${m.page}: ${m.problem} (the other meta page is used)`,
      });
  }
  new TreeChecker(source, dataSize, meta, findings).run();
  return findings.slice(0, MAX_FINDINGS);
}

/** Meta pages are within the first two pages, and pages are at most 64 KiB. */
const META_PROBE = 2 * 65536 + 128;

const UNSEEN = 0;
const REACHABLE = 1;
const FREE = 2;

/** A page's bytes (`buf[off, end)`; a whole page read from the source, or an inline page inside a value). */
interface PageRef {
  buf: Buffer;
  off: number;
  end: number;
  flags: number;
  count: number;
}

/** A key as a range of a page buffer; `buf` null means none (unbounded). */
interface KeyRef {
  buf: Buffer | null;
  off: number;
  len: number;
}

const NO_KEY: KeyRef = { buf: null, off: 0, len: 0 };

/**
 * Walks the tree reading each page from `source` once, as a buffer of its own (a view when the source is a
 * buffer): keys are ranges of those page buffers, so a branch's separators stay valid while its children are
 * read, and memory is the pages on the current path.
 */
class TreeChecker {
  private readonly source: ByteSource;
  private readonly dataSize: number;
  private readonly meta: Meta;
  private readonly findings: Finding[];
  private readonly ps: number;
  private readonly hw: number;
  private readonly state: Uint8Array;
  /** The last key seen in the bucket being walked, for ordering across pages. */
  private prev: KeyRef = NO_KEY;

  constructor(source: ByteSource, dataSize: number, meta: Meta, findings: Finding[]) {
    this.source = source;
    this.dataSize = dataSize;
    this.meta = meta;
    this.findings = findings;
    this.ps = meta.pageSize;
    this.hw = meta.pgid;
    this.state = new Uint8Array(Math.max(this.hw, 2));
  }

  private error(message: string, page?: number): void {
    if (this.findings.length >= MAX_FINDINGS) return;
    this.findings.push(
      page === undefined ? { severity: "error", message } : { severity: "error", page, message },
    );
  }

  run(): void {
    const available = Math.floor(this.dataSize / this.ps);
    if (this.hw > available) {
      this.error(
        `database truncated: high-water mark is page ${this.hw} but the file holds ${available} pages`,
      );
    }
    this.state[0] = REACHABLE;
    this.state[1] = REACHABLE;
    this.checkBucketTree(this.meta.root, "root bucket");
    this.checkFreelist();
  }

  /** Claims pages `id..id+overflow`; null when the page cannot be read or was already claimed. */
  private claim(id: number, what: string): PageRef | null {
    if (id < 2) {
      this.error(`page ${id}: ${what} points at a meta page`, id);
      return null;
    }
    if (id >= this.hw) {
      this.error(`page ${id}: ${what} points beyond the high-water mark ${this.hw}`, id);
      return null;
    }
    const off = id * this.ps;
    if (off + this.ps > this.dataSize) {
      this.error(`page ${id}: beyond the end of the file`, id);
      return null;
    }
    const h = readPageHeader(this.source.view(off, PAGE_HEADER_SIZE), 0);
    if (h.id !== id) {
      this.error(`page ${id}: header says page ${h.id}`, id);
      return null;
    }
    if (id + h.overflow >= this.hw || off + (h.overflow + 1) * this.ps > this.dataSize) {
      this.error(`page ${id}: overflow of ${h.overflow} pages runs past the end of the database`, id);
      return null;
    }
    for (let p = id; p <= id + h.overflow; p++) {
      if (this.state[p] !== UNSEEN) {
        const how =
          this.state[p] === FREE ? "is in the freelist" : "is referenced twice (cycle or shared page)";
        this.error(`page ${p}: ${what} ${how}`, p);
        return null;
      }
    }
    this.state.fill(REACHABLE, id, id + h.overflow + 1);
    const size = (h.overflow + 1) * this.ps;
    return { buf: this.source.bytes(off, size), off: 0, end: size, flags: h.flags, count: h.count };
  }

  private checkBucketTree(root: number, what: string): void {
    const saved = this.prev;
    this.prev = NO_KEY;
    this.checkPage(root, what, NO_KEY, NO_KEY, 0);
    this.prev = saved;
  }

  /** Compares key `a` with the key at `b[bOff, bOff + bLen)`: negative, zero or positive. */
  private static compare(a: KeyRef, b: Buffer, bOff: number, bLen: number): number {
    return a.buf!.compare(b, bOff, bOff + bLen, a.off, a.off + a.len);
  }

  /**
   * Checks page `id` (or `inline`, an inline page) whose keys must lie in [lo, hi) (a missing key means
   * unbounded).
   */
  private checkPage(id: number, what: string, lo: KeyRef, hi: KeyRef, depth: number, inline?: PageRef): void {
    let page: PageRef | null;
    if (inline) {
      if (inline.off + PAGE_HEADER_SIZE > inline.end) {
        this.error(`${what}: inline page truncated`);
        return;
      }
      const h = readPageHeader(inline.buf, inline.off);
      page = { ...inline, flags: h.flags, count: h.count };
    } else {
      page = this.claim(id, what);
    }
    if (!page) return;
    const name = inline ? `${what} (inline page)` : `page ${id}`;
    const pageId = inline ? undefined : id;
    if (page.flags !== BRANCH_PAGE && page.flags !== LEAF_PAGE) {
      this.error(`${name}: expected a branch or leaf page, found ${pageTypeName(page.flags)}`, pageId);
      return;
    }
    if (page.off + PAGE_HEADER_SIZE + page.count * ELEMENT_SIZE > page.end) {
      this.error(`${name}: ${page.count} elements do not fit in the page`, pageId);
      return;
    }
    const d = page.buf;
    let last: KeyRef = NO_KEY;
    if (page.flags === BRANCH_PAGE) {
      if (page.count === 0) this.error(`${name}: empty branch page`, pageId);
      const keys: [number, number, number][] = [];
      for (let i = 0, e = page.off + PAGE_HEADER_SIZE; i < page.count; i++, e += ELEMENT_SIZE) {
        const ko = e + readU32(d, e);
        const kl = readU32(d, e + 4);
        if (ko + kl > page.end) {
          this.error(`${name}: branch element ${i} key runs past the page end`, pageId);
          return;
        }
        if (last.buf && TreeChecker.compare(last, d, ko, kl) >= 0)
          this.error(`${name}: branch keys out of order at element ${i}`, pageId);
        last = { buf: d, off: ko, len: kl };
        keys.push([ko, kl, readU64(d, e + 8)]);
      }
      if (depth > 64) {
        this.error(`${name}: tree deeper than 64 levels`, pageId);
        return;
      }
      for (let i = 0; i < keys.length; i++) {
        const [ko, kl, child] = keys[i]!;
        const next = keys[i + 1];
        const nextHi: KeyRef = next ? { buf: d, off: next[0], len: next[1] } : hi;
        this.checkPage(child, `branch ${name} element ${i}`, { buf: d, off: ko, len: kl }, nextHi, depth + 1);
      }
      return;
    }
    for (let i = 0, e = page.off + PAGE_HEADER_SIZE; i < page.count; i++, e += ELEMENT_SIZE) {
      const flags = readU32(d, e);
      const ko = e + readU32(d, e + 4);
      const kl = readU32(d, e + 8);
      const vl = readU32(d, e + 12);
      if (ko + kl + vl > page.end) {
        this.error(`${name}: leaf element ${i} runs past the page end`, pageId);
        return;
      }
      if (this.prev.buf && TreeChecker.compare(this.prev, d, ko, kl) >= 0) {
        this.error(`${name}: key at element ${i} is not greater than the key before it`, pageId);
      }
      const key: KeyRef = { buf: d, off: ko, len: kl };
      if (lo.buf && TreeChecker.compare(key, lo.buf, lo.off, lo.len) < 0)
        this.error(`${name}: key at element ${i} is below its branch separator`, pageId);
      if (hi.buf && TreeChecker.compare(key, hi.buf, hi.off, hi.len) >= 0)
        this.error(`${name}: key at element ${i} is not below the next branch separator`, pageId);
      this.prev = key;
      if (flags & BUCKET_LEAF_FLAG) {
        const bucketName = JSON.stringify(d.toString("latin1", ko, ko + kl));
        if (vl < BUCKET_HEADER_SIZE) {
          this.error(`${name}: bucket ${bucketName} header truncated`, pageId);
          continue;
        }
        const vo = ko + kl;
        const root = readU64(d, vo);
        const saved = this.prev;
        this.prev = NO_KEY;
        if (root === 0)
          this.checkPage(0, `bucket ${bucketName}`, NO_KEY, NO_KEY, depth + 1, {
            buf: d,
            off: vo + BUCKET_HEADER_SIZE,
            end: vo + vl,
            flags: 0,
            count: 0,
          });
        else this.checkPage(root, `bucket ${bucketName}`, NO_KEY, NO_KEY, 0);
        this.prev = saved;
      }
    }
  }

  private checkFreelist(): void {
    const fl = this.meta.freelist;
    if (fl === NO_FREELIST) return;
    if (fl < 2 || fl >= this.hw || (fl + 1) * this.ps > this.dataSize) {
      this.error(`page ${fl}: freelist page beyond the database`, fl);
      return;
    }
    const h = readPageHeader(this.source.view(fl * this.ps, PAGE_HEADER_SIZE), 0);
    if (h.flags !== FREELIST_PAGE) {
      this.error(`page ${fl}: expected the freelist page, found ${pageTypeName(h.flags)}`, fl);
      return;
    }
    const page = this.claim(fl, "freelist");
    if (!page) return;
    const d = page.buf;
    let start = page.off + PAGE_HEADER_SIZE;
    let count = h.count;
    if (count === 0xffff) {
      count = readU64(d, start);
      start += 8;
    }
    if (start + count * 8 > page.end) {
      this.error(`page ${fl}: freelist of ${count} ids does not fit in the page`, fl);
      return;
    }
    for (let i = 0; i < count; i++) {
      const id = readU64(d, start + i * 8);
      if (id < 2 || id >= this.hw)
        this.error(`page ${id}: freelist entry outside the database (high-water ${this.hw})`, id);
      else if (this.state[id] === FREE) this.error(`page ${id}: listed twice in the freelist`, id);
      else if (this.state[id] === REACHABLE) this.error(`page ${id}: both in the freelist and in use`, id);
      else this.state[id] = FREE;
    }
    for (let id = 2; id < this.hw; id++) {
      if (this.state[id] === UNSEEN) this.error(`page ${id}: unreachable and not in the freelist`, id);
    }
  }
}

/** Renders findings one per line (`error: page 12: ...`), or `ok` when there are none; JSON as an array. */
export function renderFindings(findings: Finding[], format: "table" | "json"): string {
  if (format === "json") return `${JSON.stringify(findings)}\n`;
  if (findings.length === 0) return "ok\n";
  return `${findings.map((f) => `${f.severity}: ${f.message}`).join("\n")}\n`;
}
