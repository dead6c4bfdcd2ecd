/**
 * The optional ASCII armor: strict PEM-like framing of the binary file in standard, padded base64,
 * 64 columns per line, the last line shorter or full, LF or CRLF line ends, nothing but whitespace
 * before the BEGIN line and after the END line. Both directions are incremental.
 */
import { AgeDecryptError } from "./errors.ts";

const BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
const END = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS = 64;
const BYTES_PER_LINE = 48;
const MAX_WHITESPACE = 1024;
const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);
const FULL_LINES = /^(?:[A-Za-z0-9+/]{64}\n)+$/;
const PADDED = /^[A-Za-z0-9+/]*={0,2}$/;

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * True when a file starting with byte `first` should be read as armored: anything but the `a` of
 * the binary `age-encryption.org/` intro goes to the armor decoder, which rejects non-armor input.
 */
export function looksArmored(first: number): boolean {
  return first !== 0x61;
}

function armorError(message: string): AgeDecryptError {
  return new AgeDecryptError("armor", `invalid armor: ${message}`);
}

/** Encodes binary output into armor text, one call per piece. */
export class ArmorEncoder {
  #carry: Buffer = EMPTY;
  #started = false;

  #lines(data: Buffer): Buffer {
    const text = data.toString("base64");
    const out = Buffer.allocUnsafe(text.length + Math.ceil(text.length / COLUMNS));
    let o = 0;
    for (let i = 0; i < text.length; i += COLUMNS) {
      o += out.write(text.slice(i, i + COLUMNS), o, "latin1");
      out[o++] = NEWLINE;
    }
    return out.subarray(0, o);
  }

  /** Returns the armor text for every complete 48-byte group so far. */
  write(data: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.#started) {
      this.#started = true;
      parts.push(Buffer.from(BEGIN + "\n", "latin1"));
    }
    let off = 0;
    if (this.#carry.length) {
      const need = BYTES_PER_LINE - this.#carry.length;
      if (data.length < need) {
        this.#carry = Buffer.concat([this.#carry, data]);
        return parts.length ? Buffer.concat(parts) : EMPTY;
      }
      parts.push(this.#lines(Buffer.concat([this.#carry, data.subarray(0, need)])));
      this.#carry = EMPTY;
      off = need;
    }
    const full = Math.floor((data.length - off) / BYTES_PER_LINE) * BYTES_PER_LINE;
    if (full) parts.push(this.#lines(data.subarray(off, off + full)));
    if (off + full < data.length) this.#carry = Buffer.from(data.subarray(off + full));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The last (possibly padded) line and the END line. */
  end(): Buffer {
    const head = this.#started ? "" : BEGIN + "\n";
    const last = this.#carry.length ? this.#carry.toString("base64") + "\n" : "";
    return Buffer.from(head + last + END + "\n", "latin1");
  }
}

/** Decodes armor text into the binary file, validating the framing as it goes. */
export class ArmorDecoder {
  #state: "begin" | "body" | "end" = "begin";
  #carry: Buffer = EMPTY;
  #whitespace = 0;
  #sawShortLine = false;

  /** Returns the bytes decoded from every complete line in `chunk`; throws on malformed armor. */
  write(chunk: Buffer): Buffer {
    const data = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = EMPTY;
    return this.#process(data, false);
  }

  /** Decodes what is left and checks the armor was properly closed. */
  end(): Buffer {
    const data = this.#carry;
    this.#carry = EMPTY;
    const out = this.#process(data, true);
    if (this.#state === "begin") throw new AgeDecryptError("armor", "not an age file");
    if (this.#state === "body") throw armorError("missing END line");
    return out;
  }

  #process(data: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    let runStart = -1;
    const flushRun = (runEnd: number) => {
      if (runStart < 0) return;
      const block = data.toString("latin1", runStart, runEnd);
      if (!FULL_LINES.test(block)) throw armorError("invalid base64 line");
      out.push(Buffer.from(block, "base64"));
      runStart = -1;
    };
    while (pos < data.length) {
      if (this.#state === "end") {
        for (; pos < data.length; pos++) {
          if (!isWhitespace(data[pos]!)) throw armorError("trailing data after the END line");
          if (++this.#whitespace > MAX_WHITESPACE) throw armorError("too much trailing whitespace");
        }
        break;
      }
      if (this.#state === "begin") {
        while (pos < data.length && isWhitespace(data[pos]!)) {
          if (++this.#whitespace > MAX_WHITESPACE) throw armorError("too much leading whitespace");
          pos++;
        }
        if (pos === data.length) break;
      }
      let lineEnd = data.indexOf(NEWLINE, pos);
      const terminated = lineEnd >= 0;
      if (!terminated) {
        if (!final) {
          if (data.length - pos > 2 * COLUMNS) throw armorError("line too long");
          break;
        }
        lineEnd = data.length;
      }
      const next = terminated ? lineEnd + 1 : lineEnd;
      if (
        this.#state === "body" &&
        terminated &&
        lineEnd - pos === COLUMNS &&
        data[lineEnd - 1] !== 0x3d &&
        !this.#sawShortLine
      ) {
        // Unpadded full-width lines are validated and decoded in runs, not one by one.
        if (runStart < 0) runStart = pos;
        pos = next;
        continue;
      }
      flushRun(pos);
      let line = data.toString("latin1", pos, lineEnd);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      pos = next;
      if (this.#state === "begin") {
        if (line !== BEGIN) {
          throw line.startsWith("-----")
            ? armorError("malformed BEGIN line")
            : new AgeDecryptError("armor", "not an age file");
        }
        this.#state = "body";
        this.#whitespace = 0;
        continue;
      }
      if (line === END) {
        this.#state = "end";
        continue;
      }
      if (this.#sawShortLine) throw armorError("data after the last line");
      if (line.length === 0) throw armorError("empty line");
      if (line.length > COLUMNS) throw armorError("line too long");
      if (line.length % 4 !== 0 || !PADDED.test(line)) throw armorError("invalid base64 line");
      const bytes = Buffer.from(line, "base64");
      if (bytes.toString("base64") !== line) throw armorError("non-canonical base64");
      if (bytes.length < BYTES_PER_LINE) this.#sawShortLine = true;
      out.push(bytes);
    }
    flushRun(pos);
    if (pos < data.length) this.#carry = Buffer.from(data.subarray(pos));
    return out.length === 0 ? EMPTY : out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
