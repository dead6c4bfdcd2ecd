/**
 * A set of byte strings, for counting etcd 3.6's live keys during a status walk: keys are added and deleted
 * as ranges of a page buffer, copied only when new, and never turned into JavaScript strings. A Set of
 * latin1 strings cost about 1.4 µs a key, mostly making the strings and collecting them (60 ms of CPU in the
 * Kubernetes-shaped bench's 3.6 status, a fifth of it).
 *
 * Open addressing over a power-of-two slot table; each key's bytes live once in an arena that grows by
 * doubling. A deleted key keeps its entry, marked dead, and comes back to life when added again (a key
 * deleted and re-created keeps one entry). Memory grows with the distinct keys seen, as the Set's did.
 */
export class ByteKeySet {
  /** Keys alive now. */
  size = 0;
  private arena: Buffer = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  /** Entry index + 1 per slot; 0 is an empty slot. */
  private slots = new Int32Array(1 << 12);
  private entries = 0;
  private offsets = new Uint32Array(1 << 11);
  private lengths = new Uint32Array(1 << 11);
  private hashes = new Int32Array(1 << 11);
  private alive = new Uint8Array(1 << 11);

  /** Adds the key `buf[start, end)`. */
  add(buf: Uint8Array, start: number, end: number): void {
    const e = this.find(buf, start, end, true);
    if (!this.alive[e]) {
      this.alive[e] = 1;
      this.size++;
    }
  }

  /** Removes the key `buf[start, end)` if present. */
  delete(buf: Uint8Array, start: number, end: number): void {
    const e = this.find(buf, start, end, false);
    if (e >= 0 && this.alive[e]) {
      this.alive[e] = 0;
      this.size--;
    }
  }

  /** The entry of the key, created (dead) when `create` and absent; -1 when absent and not created. */
  private find(buf: Uint8Array, start: number, end: number, create: boolean): number {
    const length = end - start;
    // Four bytes per step (status runs this cold, once per key: fewer steps is most of its cost), mixed
    // again at the end so that the low bits that pick a slot depend on every byte.
    let h = Math.imul(length, 0x9e3779b1);
    let i = start;
    for (; i + 4 <= end; i += 4)
      h = Math.imul(
        h ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)),
        0x9e3779b1,
      );
    for (; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const slot = this.slots[s]!;
      if (slot === 0) {
        if (!create) return -1;
        const e = this.insert(buf, start, length, h);
        this.slots[s] = e + 1;
        if (this.entries * 2 > this.slots.length) this.rehash();
        return e;
      }
      const e = slot - 1;
      if (this.hashes[e] === h && this.lengths[e] === length && this.sameBytes(e, buf, start, length))
        return e;
    }
  }

  private sameBytes(e: number, buf: Uint8Array, start: number, length: number): boolean {
    const arena = this.arena;
    const off = this.offsets[e]!;
    for (let i = 0; i < length; i++) if (arena[off + i] !== buf[start + i]) return false;
    return true;
  }

  private insert(buf: Uint8Array, start: number, length: number, hash: number): number {
    if (this.used + length > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + length));
      this.arena.copy(bigger, 0, 0, this.used);
      this.arena = bigger;
    }
    this.arena.set(buf.subarray(start, start + length), this.used);
    if (this.entries === this.offsets.length) {
      const n = this.entries * 2;
      this.offsets = grown(this.offsets, new Uint32Array(n));
      this.lengths = grown(this.lengths, new Uint32Array(n));
      this.hashes = grown(this.hashes, new Int32Array(n));
      this.alive = grown(this.alive, new Uint8Array(n));
    }
    const e = this.entries++;
    this.offsets[e] = this.used;
    this.lengths[e] = length;
    this.hashes[e] = hash;
    this.used += length;
    return e;
  }

  /** Doubles the slot table (kept at most half full) and places every entry again. */
  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.entries; e++) {
      let s = this.hashes[e]! & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = e + 1;
    }
    this.slots = slots;
  }
}

function grown<T extends Uint32Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
