import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MANIFEST_FORMAT, parseManifest, serializeManifest } from "../../src/catalog/manifest.ts";
import { fakeSnapshot, sampleManifest } from "./fixtures.ts";

const valid = () => sampleManifest("prod", new Date("2026-11-23T20:12:59Z"), fakeSnapshot(1), "zstd", 300);

describe("manifest", () => {
  test("what serializeManifest writes, parseManifest reads back unchanged", () => {
    const m = valid();
    assert.deepEqual(parseManifest(serializeManifest(m)), m);
  });

  test("a newer format is reported as such, not half-read", () => {
    const text = JSON.stringify({ ...valid(), format: 99, somethingNew: { x: 1 } });
    assert.throws(() => parseManifest(text), /manifest format 99 is newer than this tool understands \(1\)/);
    assert.throws(() => parseManifest(JSON.stringify({ format: MANIFEST_FORMAT + 1 })), /newer/);
  });

  test("an older or non-numeric format is invalid, naming the field", () => {
    assert.throws(
      () => parseManifest(JSON.stringify({ ...valid(), format: 0 })),
      /manifest is invalid: format/,
    );
    assert.throws(
      () => parseManifest(JSON.stringify({ ...valid(), format: "1" })),
      /manifest is invalid: format/,
    );
  });

  test("a missing or malformed field names the field", () => {
    const { sha256: _, ...noHash } = valid();
    assert.throws(() => parseManifest(JSON.stringify(noHash)), /manifest is invalid: sha256/);
    assert.throws(
      () => parseManifest(JSON.stringify({ ...valid(), sizes: { plain: -1, compressed: 1, stored: 1 } })),
      /manifest is invalid: sizes\.plain/,
    );
    assert.throws(
      () => parseManifest(JSON.stringify({ ...valid(), created: "yesterday" })),
      /manifest is invalid: created/,
    );
    assert.throws(
      () => parseManifest(JSON.stringify({ ...valid(), tool: { name: "other", version: "1" } })),
      /manifest is invalid: tool\.name/,
    );
  });

  test("not JSON, or not an object", () => {
    assert.throws(() => parseManifest("{"), /manifest is not JSON/);
    assert.throws(() => parseManifest("null"), /manifest is invalid: \(root\)/);
    assert.throws(() => parseManifest("[]"), /manifest is invalid/);
  });
});
