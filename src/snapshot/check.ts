import { createHash } from "node:crypto";
import { chooseMeta, type Meta, readMetas } from "./bbolt-meta.ts";
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
} from "./bbolt-page.ts";

/** One problem found in a snapshot. `page` names the page when the problem belongs to one. */
export interface Finding {
  severity: "error" | "warning";
  message: string;
  page?: number;
}

const TRAILER_SIZE = 32;
/** Past this many findings the file is plainly broken; more lines would only bury the first ones. */
const MAX_FINDINGS = 200;

/**
 * Checks a whole snapshot file: its sha256 trailer, both meta pages, and the page tree of the meta in use
 * (each page reachable once or free, ids under the high-water mark, keys strictly sorted within and across
 * pages and consistent with branch separators, overflow within bounds, freelist consistent). Returns the
 * problems found, an empty list for a sound file. Never throws on corrupt input.
 */
export function checkSnapshot(file: Buffer): Finding[] {
  const findings: Finding[] = [];
  const data = checkTrailer(file, findings);
  const metas = readMetas(data);
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
  new TreeChecker(data, meta, findings).run();
  return findings.slice(0, MAX_FINDINGS);
}

/** Verifies the trailer and returns the database bytes without it. */
function checkTrailer(file: Buffer, findings: Finding[]): Buffer {
  if (file.length % 512 === TRAILER_SIZE && file.length > TRAILER_SIZE) {
    const data = file.subarray(0, file.length - TRAILER_SIZE);
    const digest = createHash("sha256").update(data).digest();
    if (!digest.equals(file.subarray(file.length - TRAILER_SIZE))) {
      findings.push({
        severity: "error",
        message: "sha256 trailer mismatch: the file changed after etcd wrote it",
      });
    }
    return data;
  }
  if (file.length % 512 === 0) {
    findings.push({
      severity: "warning",
      message: "no sha256 trailer: integrity of the whole file cannot be proven",
    });
  } else {
    findings.push({
      severity: "error",
      message: `no sha256 trailer and file size ${file.length} is not a whole number of pages (truncated?)`,
    });
  }
  return file;
}

const UNSEEN = 0;
const REACHABLE = 1;
const FREE = 2;

class TreeChecker {
  private readonly data: Buffer;
  private readonly meta: Meta;
  private readonly findings: Finding[];
  private readonly ps: number;
  private readonly hw: number;
  private readonly state: Uint8Array;
  /** Offset and length of the last key seen in the bucket being walked, for ordering across pages. */
  private prevOff = -1;
  private prevLen = 0;

  constructor(data: Buffer, meta: Meta, findings: Finding[]) {
    this.data = data;
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
    const available = Math.floor(this.data.length / this.ps);
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

  /** Claims pages `id..id+overflow`; false when the page cannot be read or was already claimed. */
  private claim(id: number, what: string): { off: number; end: number; flags: number; count: number } | null {
    if (id < 2) {
      this.error(`page ${id}: ${what} points at a meta page`, id);
      return null;
    }
    if (id >= this.hw) {
      this.error(`page ${id}: ${what} points beyond the high-water mark ${this.hw}`, id);
      return null;
    }
    const off = id * this.ps;
    if (off + this.ps > this.data.length) {
      this.error(`page ${id}: beyond the end of the file`, id);
      return null;
    }
    const h = readPageHeader(this.data, off);
    if (h.id !== id) {
      this.error(`page ${id}: header says page ${h.id}`, id);
      return null;
    }
    if (id + h.overflow >= this.hw || off + (h.overflow + 1) * this.ps > this.data.length) {
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
    return { off, end: off + (h.overflow + 1) * this.ps, flags: h.flags, count: h.count };
  }

  private checkBucketTree(root: number, what: string): void {
    const savedOff = this.prevOff;
    const savedLen = this.prevLen;
    this.prevOff = -1;
    this.checkPage(root, what, -1, 0, -1, 0, 0);
    this.prevOff = savedOff;
    this.prevLen = savedLen;
  }

  private compare(aOff: number, aLen: number, bOff: number, bLen: number): number {
    return this.data.compare(this.data, bOff, bOff + bLen, aOff, aOff + aLen);
  }

  /**
   * Checks page `id` (or an inline page when `inlineOff` >= 0) whose keys must lie in [lo, hi)
   * (an offset of -1 means unbounded).
   */
  private checkPage(
    id: number,
    what: string,
    loOff: number,
    loLen: number,
    hiOff: number,
    hiLen: number,
    depth: number,
    inline?: { off: number; end: number },
  ): void {
    let page: { off: number; end: number; flags: number; count: number } | null;
    if (inline) {
      if (inline.off + PAGE_HEADER_SIZE > inline.end) {
        this.error(`${what}: inline page truncated`);
        return;
      }
      const h = readPageHeader(this.data, inline.off);
      page = { off: inline.off, end: inline.end, flags: h.flags, count: h.count };
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
    const d = this.data;
    let lastOff = -1;
    let lastLen = 0;
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
        if (lastOff >= 0 && this.compare(lastOff, lastLen, ko, kl) >= 0)
          this.error(`${name}: branch keys out of order at element ${i}`, pageId);
        lastOff = ko;
        lastLen = kl;
        keys.push([ko, kl, readU64(d, e + 8)]);
      }
      if (depth > 64) {
        this.error(`${name}: tree deeper than 64 levels`, pageId);
        return;
      }
      for (let i = 0; i < keys.length; i++) {
        const [ko, kl, child] = keys[i]!;
        const next = keys[i + 1];
        const [nhOff, nhLen] = next ? [next[0], next[1]] : [hiOff, hiLen];
        this.checkPage(child, `branch ${name} element ${i}`, ko, kl, nhOff, nhLen, depth + 1);
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
      if (this.prevOff >= 0 && this.compare(this.prevOff, this.prevLen, ko, kl) >= 0) {
        this.error(`${name}: key at element ${i} is not greater than the key before it`, pageId);
      }
      if (loOff >= 0 && this.compare(ko, kl, loOff, loLen) < 0)
        this.error(`${name}: key at element ${i} is below its branch separator`, pageId);
      if (hiOff >= 0 && this.compare(ko, kl, hiOff, hiLen) >= 0)
        this.error(`${name}: key at element ${i} is not below the next branch separator`, pageId);
      this.prevOff = ko;
      this.prevLen = kl;
      if (flags & BUCKET_LEAF_FLAG) {
        const bucketName = JSON.stringify(d.toString("latin1", ko, ko + kl));
        if (vl < BUCKET_HEADER_SIZE) {
          this.error(`${name}: bucket ${bucketName} header truncated`, pageId);
          continue;
        }
        const vo = ko + kl;
        const root = readU64(d, vo);
        const savedOff = this.prevOff;
        const savedLen = this.prevLen;
        this.prevOff = -1;
        if (root === 0)
          this.checkPage(0, `bucket ${bucketName}`, -1, 0, -1, 0, depth + 1, {
            off: vo + BUCKET_HEADER_SIZE,
            end: vo + vl,
          });
        else this.checkPage(root, `bucket ${bucketName}`, -1, 0, -1, 0, 0);
        this.prevOff = savedOff;
        this.prevLen = savedLen;
      }
    }
  }

  private checkFreelist(): void {
    const fl = this.meta.freelist;
    if (fl === NO_FREELIST) return;
    if (fl < 2 || fl >= this.hw || (fl + 1) * this.ps > this.data.length) {
      this.error(`page ${fl}: freelist page beyond the database`, fl);
      return;
    }
    const h = readPageHeader(this.data, fl * this.ps);
    if (h.flags !== FREELIST_PAGE) {
      this.error(`page ${fl}: expected the freelist page, found ${pageTypeName(h.flags)}`, fl);
      return;
    }
    const page = this.claim(fl, "freelist");
    if (!page) return;
    let start = page.off + PAGE_HEADER_SIZE;
    let count = h.count;
    if (count === 0xffff) {
      count = readU64(this.data, start);
      start += 8;
    }
    if (start + count * 8 > page.end) {
      this.error(`page ${fl}: freelist of ${count} ids does not fit in the page`, fl);
      return;
    }
    for (let i = 0; i < count; i++) {
      const id = readU64(this.data, start + i * 8);
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
