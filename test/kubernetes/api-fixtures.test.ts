import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { decodeObject, SCHEMA_RELEASE } from "../../src/kubernetes/object.ts";
import { toJson } from "../../src/kubernetes/render.ts";
import { SeededRandom, testSeed } from "../fixtures/seeded-random.ts";
import { k8sApiModules } from "./k8s-api-modules.ts";

/**
 * The Kubernetes API's own round-trip fixtures (k8s.io/api testdata/<release>/<group>.<version>.<Kind>.pb, and
 * k8s.io/apiextensions-apiserver's pkg/apis/testdata:
 * every field set, in the `k8s\0` storage envelope, beside the .json the apiserver writes for the same
 * object), read from the Go module cache: our decoding of each .pb must equal its .json as JSON values.
 * HEAD is the release the schema was generated from: every type equal. Older releases' fixtures are what a
 * cluster of that release stored; a type that changed since (alpha versions) may differ, and then the decoder
 * must say so (complete: false, the unknown bytes kept), never print a different object as complete.
 */

const modules = k8sApiModules();
const testdata = "dirs" in modules ? join(modules.dirs.get("k8s.io/api")!, "testdata") : "";

interface Outcome {
  equal: string[];
  differ: { name: string; complete: boolean }[];
}

function decodeRelease(release: string, root = testdata): Outcome {
  const dir = join(root, release);
  const outcome: Outcome = { equal: [], differ: [] };
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".pb"))
    .sort()) {
    const name = file.slice(0, -3);
    const parts = name.split(".");
    const kind = parts.pop()!;
    const version = parts.pop()!;
    const group = parts.join(".");
    // A few fixtures (WatchEvent) leave the envelope's TypeMeta empty: the file name says the type.
    const decoded = decodeObject(readFileSync(join(dir, file)), {
      typeWhenUnnamed: { apiVersion: group === "core" ? version : `${group}/${version}`, kind },
    });
    const got = JSON.parse(toJson(decoded.object));
    const want = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
    if (isDeepStrictEqual(got, want)) outcome.equal.push(name);
    else outcome.differ.push({ name, complete: decoded.complete });
  }
  return outcome;
}

function perGroup(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) {
    const group = n.split(".").slice(0, -2).join(".");
    counts.set(group, (counts.get(group) ?? 0) + 1);
  }
  return [...counts].map(([g, c]) => `${g} ${c}`).join(", ");
}

describe(`k8s.io/api fixtures decode as the apiserver's JSON (schema of Kubernetes ${SCHEMA_RELEASE})`, {
  skip: "skip" in modules ? modules.skip : false,
}, () => {
  test("HEAD: every type's .pb decodes equal to its .json", () => {
    const { equal, differ } = decodeRelease("HEAD");
    console.log(`HEAD: ${equal.length} types equal, ${differ.length} differ; per group: ${perGroup(equal)}`);
    assert.deepEqual(
      differ.map((d) => d.name),
      [],
    );
    assert.ok(equal.length >= 180, `only ${equal.length} fixtures found`);
  });

  test("apiextensions-apiserver's HEAD fixtures (CustomResourceDefinition with every schema field, ConversionReview)", () => {
    const root = join(
      (modules as { dirs: Map<string, string> }).dirs.get("k8s.io/apiextensions-apiserver")!,
      "pkg",
      "apis",
      "testdata",
    );
    const { equal, differ } = decodeRelease("HEAD", root);
    console.log(`apiextensions-apiserver HEAD: ${equal.length} types equal, ${differ.length} differ`);
    assert.deepEqual(
      differ.map((d) => d.name),
      [],
    );
    assert.ok(equal.length >= 4, `only ${equal.length} fixtures found`);
  });

  for (const release of ["v1.34.0", "v1.33.0"]) {
    test(`${release}: equal, or flagged incomplete where the type changed since (listed)`, () => {
      const { equal, differ } = decodeRelease(release);
      console.log(
        `${release}: ${equal.length} types equal, ${differ.length} differ: ${differ.map((d) => d.name).join(", ") || "none"}`,
      );
      assert.ok(equal.length >= 170, `only ${equal.length} of ${release}'s fixtures equal`);
      for (const d of differ)
        assert.equal(d.complete, false, `${d.name} differs but was decoded as complete`);
    });
  }
});

describe("damaged values: decoded or refused with an Error, never a crash or a hang", {
  skip: "skip" in modules ? modules.skip : false,
}, () => {
  const seed = testSeed(2525);
  test(`5,000 mutations of the fixtures (seed ${seed}; rerun with ETCD_BACKUP_TEST_SEED=${seed})`, () => {
    const rng = new SeededRandom(seed);
    const dir = join(testdata, "HEAD");
    const values = readdirSync(dir)
      .filter((f) => f.endsWith(".pb"))
      .map((f) => readFileSync(join(dir, f)));
    let decoded = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const value = Buffer.from(rng.pick(values));
      const kind = rng.int(0, 2);
      let mutated: Buffer;
      if (kind === 0) {
        for (let n = rng.int(1, 4); n > 0; n--) value[rng.int(4, value.length - 1)] = rng.int(0, 255);
        mutated = value;
      } else if (kind === 1) mutated = value.subarray(0, rng.int(4, value.length - 1));
      else mutated = Buffer.concat([value.subarray(0, rng.int(4, value.length)), rng.bytes(rng.int(1, 40))]);
      try {
        const d = decodeObject(mutated);
        toJson(d.object);
        decoded++;
      } catch (err) {
        assert.ok(err instanceof Error, `seed ${seed}, mutation ${i}: threw ${String(err)}`);
        refused++;
      }
    }
    console.log(`${decoded} damaged values decoded (unknown fields kept), ${refused} refused with an error`);
    assert.equal(decoded + refused, 5000);
  });
});
