/**
 * CRC-32C in WebAssembly, for crc32c.ts: the module of crc32c-wasm-emit.ts (its source, listings and design),
 * instantiated with its tables. WebAssembly has no CRC instruction; the module's table-driven loops are still
 * faster compiled by V8 from WebAssembly than the JavaScript loop (no typed-array bounds checks, no
 * deoptimisation), and its SIMD loop about 3x faster.
 *
 * The module's bytes are committed below, as written by crc32c-wasm-emit.ts (the test rebuilds and compares
 * them): emitting them at start-up cost 20-40 ms. Each instance's memory is grown once, when it is created,
 * and never again, so views of it stay valid.
 */
import {
  BLOCK_BYTES,
  crcModuleBytes,
  DATA_OFFSET,
  LANE_BYTES,
  type ModuleVariant,
  NIBBLE_TABLES,
  SHIFT_TABLES,
  SLICE_TABLES,
} from "./crc32c-wasm-emit.ts";

export { BLOCK_BYTES, DATA_OFFSET, LANE_BYTES };

const POLY = 0x82f63b78;

/**
 * The part of the WebAssembly JavaScript API used here (the project's TypeScript libs do not declare it).
 * Absent when Node runs without WebAssembly (`--jitless`).
 */
export interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: { new (bytes: Uint8Array): object; exports(module: object): { name: string; kind: string }[] };
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

export const webAssembly: WebAssemblyApi | undefined = (globalThis as { WebAssembly?: WebAssemblyApi })
  .WebAssembly;

/** The module's exports. `crcBlocks` is absent from the module built without SIMD. */
interface CrcExports {
  crc: (crc: number, ptr: number, length: number) => number;
  crcBlocks?: (crc: number, ptr: number, blocks: number) => number;
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
}

/** A ready instance: its functions, and its memory as bytes with data to be copied at DATA_OFFSET. */
export interface WasmCrc {
  crc: CrcExports["crc"];
  crcBlocks: ((crc: number, ptr: number, blocks: number) => number) | null;
  memory: Uint8Array;
}

/**
 * Compiles and instantiates the module with `dataBytes` of room for data, and fills its tables. Null without
 * WebAssembly or on a big-endian host (the tables are written through a host-order view). By default the
 * module has `crcBlocks` with the relaxed swizzle, else the plain one, else (SIMD does not validate) none;
 * `simd` picks one (for the tests).
 */
export function createWasmCrc(
  dataBytes: number,
  options: { simd?: "relaxed" | "plain" | false } = {},
): WasmCrc | null {
  if (!webAssembly || new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) return null;
  const key = String(options.simd ?? "default");
  let compiled = modules.get(key);
  if (!compiled) {
    let bytes: Uint8Array | null = null;
    if (options.simd !== false) {
      // Relaxed SIMD's swizzle maps to one x86 pshufb; the plain one also clamps indices, which are all < 16.
      for (const swizzle of options.simd ? [options.simd] : (["relaxed", "plain"] as const)) {
        const candidate = moduleBytes(swizzle);
        if (webAssembly.validate(candidate)) {
          bytes = candidate;
          break;
        }
      }
    }
    compiled = new webAssembly.Module(bytes ?? moduleBytes(null));
    modules.set(key, compiled);
  }
  const instance = new webAssembly.Instance(compiled, {});
  const exports = instance.exports as unknown as CrcExports;
  const pages = Math.ceil((DATA_OFFSET + dataBytes) / 65536) - exports.memory.buffer.byteLength / 65536;
  if (pages > 0) exports.memory.grow(pages);
  if (!tables) {
    tables = new Uint8Array(DATA_OFFSET);
    fillTables(tables.buffer);
  }
  new Uint8Array(exports.memory.buffer).set(tables);
  return {
    crc: exports.crc,
    crcBlocks: exports.crcBlocks ?? null,
    memory: new Uint8Array(exports.memory.buffer),
  };
}

/** Compiled modules by variant, and the tables every instance's memory starts with: computed once. */
const modules = new Map<string, object>();
let tables: Uint8Array | null = null;

function fillTables(buffer: ArrayBufferLike): void {
  const t = new Uint32Array(buffer, SLICE_TABLES, 16 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  const zeroByte = (c: number) => (t[c & 0xff]! ^ (c >>> 8)) >>> 0;
  for (let k = 1; k < 16; k++) for (let n = 0; n < 256; n++) t[k * 256 + n] = zeroByte(t[(k - 1) * 256 + n]!);
  // Sb[n]: shift by LANE_BYTES zero bytes, computed for the 8 single bits of each byte and combined by xor.
  const s = new Uint32Array(buffer, SHIFT_TABLES, 4 * 256);
  for (let b = 0; b < 4; b++) {
    const bit: number[] = [];
    for (let i = 0; i < 8; i++) {
      let c = (1 << (8 * b + i)) >>> 0;
      for (let z = 0; z < LANE_BYTES; z++) c = zeroByte(c);
      bit.push(c);
    }
    for (let n = 0; n < 256; n++) {
      let v = 0;
      for (let i = 0; i < 8; i++) if (n & (1 << i)) v ^= bit[i]!;
      s[b * 256 + n] = v >>> 0;
    }
  }
  const nib = new Uint8Array(buffer, NIBBLE_TABLES, 128);
  for (let b = 0; b < 4; b++) {
    for (let i = 0; i < 16; i++) {
      nib[16 * b + i] = (t[i]! >>> (8 * b)) & 0xff;
      nib[64 + 16 * b + i] = (t[i << 4]! >>> (8 * b)) & 0xff;
    }
  }
}

/**
 * The module's bytes: the committed ones for the variants used in practice, else (the plain swizzle, where
 * relaxed SIMD is off) emitted now.
 */
export function moduleBytes(variant: ModuleVariant): Uint8Array {
  const committed = variant === "relaxed" ? RELAXED_MODULE : variant === null ? SCALAR_MODULE : null;
  return committed ? Buffer.from(committed.join(""), "base64") : crcModuleBytes({ simd: variant });
}

/** crcModuleBytes({ simd: "relaxed" }) in base64. */
export const RELAXED_MODULE: readonly string[] = [
  "AGFzbQEAAAABCAFgA39/fwF/AwMCAAAFAwEAAQccAwZtZW1vcnkCAANjcmMAAAljcmNCbG9ja3MAAQrwKQLmAgEGfyAAQX9zIQAg",
  "ASACaiEEIAEgAkFwcWohAwJAA0AgASADTw0BIAAgASgCAHMhBSABKAIEIQYgASgCCCEHIAEoAgwhCCAFQQJ0QfwHcSgCgHggBUEG",
  "dkH8B3EoAoBwcyAFQQ52QfwHcSgCgGhzIAVBFnZB/AdxKAKAYHMgBkECdEH8B3EoAoBYcyAGQQZ2QfwHcSgCgFBzIAZBDnZB/Adx",
  "KAKASHMgBkEWdkH8B3EoAoBAcyAHQQJ0QfwHcSgCgDhzIAdBBnZB/AdxKAKAMHMgB0EOdkH8B3EoAoAocyAHQRZ2QfwHcSgCgCBz",
  "IAhBAnRB/AdxKAKAGHMgCEEGdkH8B3EoAoAQcyAIQQ52QfwHcSgCgAhzIAhBFnZB/AdxKAIAcyEAIAFBEGohAQwACwsCQANAIAEg",
  "BE8NASAAIAEtAABzQf8BcUECdCgCACAAQQh2cyEAIAFBAWohAQwACwsgAEF/cwuFJwICfzB7QQD9AASAoAEhDEEA/QAEwKABIRBB",
  "AP0ABJCgASENQQD9AATQoAEhEUEA/QAEoKABIQ5BAP0ABOCgASESQQD9AASwoAEhD0EA/QAE8KABIRP9DA8PDw8PDw8PDw8PDw8P",
  "Dw8hFCAAQX9zIQMCQANAIAJFDQH9DAAAAAAAAAAAAAAAAAAAAAAgA/0XACEF/QwAAAAAAAAAAAAAAAAAAAAAIANBCHb9FwAhBv0M",
  "AAAAAAAAAAAAAAAAAAAAACADQRB2/RcAIQf9DAAAAAAAAAAAAAAAAAAAAAAgA0EYdv0XACEIQQAhBAJAA0AgBEGAAU8NASABIARq",
  "/QAEACEVIAEgBGr9AASAASEWIAEgBGr9AASAAiEXIAEgBGr9AASAAyEYIAEgBGr9AASABCEZIAEgBGr9AASABSEaIAEgBGr9AASA",
  "BiEbIAEgBGr9AASAByEcIAEgBGr9AASACCEdIAEgBGr9AASACSEeIAEgBGr9AASACiEfIAEgBGr9AASACyEgIAEgBGr9AASADCEh",
  "IAEgBGr9AASADSEiIAEgBGr9AASADiEjIAEgBGr9AASADyEkIBUgHf0NABABEQISAxMEFAUVBhYHFyElIBUgHf0NCBgJGQoaCxsM",
  "HA0dDh4PHyEmIBYgHv0NABABEQISAxMEFAUVBhYHFyEnIBYgHv0NCBgJGQoaCxsMHA0dDh4PHyEoIBcgH/0NABABEQISAxMEFAUV",
  "BhYHFyEpIBcgH/0NCBgJGQoaCxsMHA0dDh4PHyEqIBggIP0NABABEQISAxMEFAUVBhYHFyErIBggIP0NCBgJGQoaCxsMHA0dDh4P",
  "HyEsIBkgIf0NABABEQISAxMEFAUVBhYHFyEtIBkgIf0NCBgJGQoaCxsMHA0dDh4PHyEuIBogIv0NABABEQISAxMEFAUVBhYHFyEv",
  "IBogIv0NCBgJGQoaCxsMHA0dDh4PHyEwIBsgI/0NABABEQISAxMEFAUVBhYHFyExIBsgI/0NCBgJGQoaCxsMHA0dDh4PHyEyIBwg",
  "JP0NABABEQISAxMEFAUVBhYHFyEzIBwgJP0NCBgJGQoaCxsMHA0dDh4PHyE0ICUgLf0NABABEQISAxMEFAUVBhYHFyEVICUgLf0N",
  "CBgJGQoaCxsMHA0dDh4PHyEWICYgLv0NABABEQISAxMEFAUVBhYHFyEXICYgLv0NCBgJGQoaCxsMHA0dDh4PHyEYICcgL/0NABAB",
  "EQISAxMEFAUVBhYHFyEZICcgL/0NCBgJGQoaCxsMHA0dDh4PHyEaICggMP0NABABEQISAxMEFAUVBhYHFyEbICggMP0NCBgJGQoa",
  "CxsMHA0dDh4PHyEcICkgMf0NABABEQISAxMEFAUVBhYHFyEdICkgMf0NCBgJGQoaCxsMHA0dDh4PHyEeICogMv0NABABEQISAxME",
  "FAUVBhYHFyEfICogMv0NCBgJGQoaCxsMHA0dDh4PHyEgICsgM/0NABABEQISAxMEFAUVBhYHFyEhICsgM/0NCBgJGQoaCxsMHA0d",
  "Dh4PHyEiICwgNP0NABABEQISAxMEFAUVBhYHFyEjICwgNP0NCBgJGQoaCxsMHA0dDh4PHyEkIBUgHf0NABABEQISAxMEFAUVBhYH",
  "FyElIBUgHf0NCBgJGQoaCxsMHA0dDh4PHyEmIBYgHv0NABABEQISAxMEFAUVBhYHFyEnIBYgHv0NCBgJGQoaCxsMHA0dDh4PHyEo",
  "IBcgH/0NABABEQISAxMEFAUVBhYHFyEpIBcgH/0NCBgJGQoaCxsMHA0dDh4PHyEqIBggIP0NABABEQISAxMEFAUVBhYHFyErIBgg",
  "IP0NCBgJGQoaCxsMHA0dDh4PHyEsIBkgIf0NABABEQISAxMEFAUVBhYHFyEtIBkgIf0NCBgJGQoaCxsMHA0dDh4PHyEuIBogIv0N",
  "ABABEQISAxMEFAUVBhYHFyEvIBogIv0NCBgJGQoaCxsMHA0dDh4PHyEwIBsgI/0NABABEQISAxMEFAUVBhYHFyExIBsgI/0NCBgJ",
  "GQoaCxsMHA0dDh4PHyEyIBwgJP0NABABEQISAxMEFAUVBhYHFyEzIBwgJP0NCBgJGQoaCxsMHA0dDh4PHyE0ICUgLf0NABABEQIS",
  "AxMEFAUVBhYHFyEVICUgLf0NCBgJGQoaCxsMHA0dDh4PHyEWICYgLv0NABABEQISAxMEFAUVBhYHFyEXICYgLv0NCBgJGQoaCxsM",
  "HA0dDh4PHyEYICcgL/0NABABEQISAxMEFAUVBhYHFyEZICcgL/0NCBgJGQoaCxsMHA0dDh4PHyEaICggMP0NABABEQISAxMEFAUV",
  "BhYHFyEbICggMP0NCBgJGQoaCxsMHA0dDh4PHyEcICkgMf0NABABEQISAxMEFAUVBhYHFyEdICkgMf0NCBgJGQoaCxsMHA0dDh4P",
  "HyEeICogMv0NABABEQISAxMEFAUVBhYHFyEfICogMv0NCBgJGQoaCxsMHA0dDh4PHyEgICsgM/0NABABEQISAxMEFAUVBhYHFyEh",
  "ICsgM/0NCBgJGQoaCxsMHA0dDh4PHyEiICwgNP0NABABEQISAxMEFAUVBhYHFyEjICwgNP0NCBgJGQoaCxsMHA0dDh4PHyEkIAUg",
  "Ff1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIg",
  "C/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgFv1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEh",
  "BSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgF/1RIQkgCSAU",
  "/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9",
  "USEHIA8gCv2AAiATIAv9gAL9USEIIAUgGP1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIg",
  "ESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgGf1RIQkgCSAU/U4hCiAJQQT9",
  "bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2A",
  "AiATIAv9gAL9USEIIAUgGv1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEg",
  "B/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgG/1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2A",
  "AiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9",
  "USEIIAUgHP1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK",
  "/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgHf1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9",
  "USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgHv1R",
  "IQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2A",
  "Av1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgH/1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSAN",
  "IAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgIP1RIQkgCSAU/U4h",
  "CiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEH",
  "IA8gCv2AAiATIAv9gAL9USEIIAUgIf1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL",
  "/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgIv1RIQkgCSAU/U4hCiAJQQT9bSEL",
  "IAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiAT",
  "IAv9gAL9USEIIAUgI/1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQIAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1R",
  "IQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEIIAUgJP1RIQkgCSAU/U4hCiAJQQT9bSELIAwgCv2AAiAQ",
  "IAv9gAL9USAG/VEhBSANIAr9gAIgESAL/YAC/VEgB/1RIQYgDiAK/YACIBIgC/2AAv1RIAj9USEHIA8gCv2AAiATIAv9gAL9USEI",
  "IARBEGohBAwACwsgBSAG/Q0AEAERAhIDEwQUBRUGFgcXIRUgBSAG/Q0IGAkZChoLGwwcDR0OHg8fIRYgByAI/Q0AEAERAhIDEwQU",
  "BRUGFgcXIRcgByAI/Q0IGAkZChoLGwwcDR0OHg8fIRhBACAVIBf9DQABEBECAxITBAUUFQYHFhf9CwSAoQFBACAVIBf9DQgJGBkK",
  "CxobDA0cHQ4PHh/9CwSQoQFBACAWIBj9DQABEBECAxITBAUUFQYHFhf9CwSgoQFBACAWIBj9DQgJGBkKCxobDA0cHQ4PHh/9CwSw",
  "oQFBACgCgKEBIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKE",
  "oQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKIoQFzIQMg",
  "A0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKMoQFzIQMgA0ECdEH8",
  "B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKQoQFzIQMgA0ECdEH8B3EoAoCA",
  "ASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKUoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2",
  "QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKYoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgC",
  "gIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKcoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyAD",
  "QQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKgoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwH",
  "cSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAKkoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJAB",
  "cyADQRZ2QfwHcSgCgJgBc0EAKAKooQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2",
  "QfwHcSgCgJgBc0EAKAKsoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgC",
  "gJgBc0EAKAKwoQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EA",
  "KAK0oQFzIQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAK4oQFz",
  "IQMgA0ECdEH8B3EoAoCAASADQQZ2QfwHcSgCgIgBcyADQQ52QfwHcSgCgJABcyADQRZ2QfwHcSgCgJgBc0EAKAK8oQFzIQMgAUGA",
  "EGohASACQQFrIQIMAAsLIANBf3ML",
];

/** crcModuleBytes({ simd: null }) in base64. */
export const SCALAR_MODULE: readonly string[] = [
  "AGFzbQEAAAABCAFgA39/fwF/AwIBAAUDAQABBxACBm1lbW9yeQIAA2NyYwAACukCAeYCAQZ/IABBf3MhACABIAJqIQQgASACQXBx",
  "aiEDAkADQCABIANPDQEgACABKAIAcyEFIAEoAgQhBiABKAIIIQcgASgCDCEIIAVBAnRB/AdxKAKAeCAFQQZ2QfwHcSgCgHBzIAVB",
  "DnZB/AdxKAKAaHMgBUEWdkH8B3EoAoBgcyAGQQJ0QfwHcSgCgFhzIAZBBnZB/AdxKAKAUHMgBkEOdkH8B3EoAoBIcyAGQRZ2QfwH",
  "cSgCgEBzIAdBAnRB/AdxKAKAOHMgB0EGdkH8B3EoAoAwcyAHQQ52QfwHcSgCgChzIAdBFnZB/AdxKAKAIHMgCEECdEH8B3EoAoAY",
  "cyAIQQZ2QfwHcSgCgBBzIAhBDnZB/AdxKAKACHMgCEEWdkH8B3EoAgBzIQAgAUEQaiEBDAALCwJAA0AgASAETw0BIAAgAS0AAHNB",
  "/wFxQQJ0KAIAIABBCHZzIQAgAUEBaiEBDAALCyAAQX9zCw==",
];
