/**
 * A manifest must describe the object beside it: sizes agree (checked by `list`, so `restore` refuses a mismatch)
 * and, with the bytes read, the object's sha256 and the snapshot's (checked by `verify`, which names each one).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { listBackups, resolveBackup } from "../../src/catalog/catalog.ts";
import { type Manifest, serializeManifest } from "../../src/catalog/manifest.ts";
import { manifestKey } from "../../src/catalog/names.ts";
import { describeError } from "../../src/errors.ts";
import { LocalStore } from "../../src/store/local.ts";
import { verifyBackup } from "../../src/verify/verify.ts";
import { fakeSnapshot, plantBackup, sampleManifest } from "./fixtures.ts";
import { twoRealSnapshots } from "./real-snapshots.ts";

const T = new Date("2026-11-30T07:00:00Z");

function withObject(m: Manifest, object: Buffer, run = "0123456789abcdef0123456789abcdef"): Manifest {
  return {
    ...m,
    run,
    object: { size: object.length, sha256: createHash("sha256").update(object).digest("hex") },
  };
}

describe("manifests checked against their objects", () => {
  let dir: string;
  let store: LocalStore;
  let a: Buffer;
  let b: Buffer;
  let revA: number;
  let revB: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "etcd-backup-manifest-match-"));
    const [ra, rb] = await twoRealSnapshots(dir);
    a = ra.bytes;
    b = rb.bytes;
    revA = ra.revision;
    revB = rb.revision;
    store = new LocalStore(join(dir, "store"));
    await import("node:fs/promises").then((fs) => fs.mkdir(store.root));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function plant(cluster: string, object: Buffer, manifest: Manifest): Promise<string> {
    return await plantBackup(store, object, {
      cluster,
      time: T,
      manifest: serializeManifest(manifest),
    });
  }

  test("a matching pair is complete and verifies, object checks included", async () => {
    const key = await plant("good", a, withObject(sampleManifest("good", T, a, "none", a.length, revA), a));
    const entry = await resolveBackup(store, key);
    assert.equal(entry.state, "complete");
    const report = await verifyBackup(store, entry);
    const names = report.checks.map((c) => `${c.ok ? "ok" : "FAIL"} ${c.name}`);
    assert.ok(report.ok, names.join("\n"));
    for (const check of ["object sha256", "manifest stored size", "manifest plain size", "manifest sha256"])
      assert.ok(names.includes(`ok ${check}`), `${check} missing: ${names.join(", ")}`);
  });

  test("an object 208 bytes longer than its manifest says is invalid; restore refuses it, verify names it", async () => {
    const manifest = withObject(sampleManifest("longer", T, a, "none", a.length, revA), a);
    const key = await plant("longer", a, manifest);
    await writeFile(join(store.root, key), Buffer.concat([a, Buffer.alloc(208, 1)]));
    const [entry] = (await listBackups(store)).filter((e) => e.cluster === "longer");
    assert.equal(entry?.state, "invalid");
    assert.match(entry?.problem ?? "", /object is \d+ bytes but its manifest says \d+/);
    await assert.rejects(resolveBackup(store, key), (err: unknown) => {
      assert.match(describeError(err), /is invalid: object is \d+ bytes/);
      return true;
    });
    const named = await resolveBackup(store, key, { allowMismatched: true });
    const report = await verifyBackup(store, named);
    assert.equal(report.ok, false);
    const failed = report.checks.filter((c) => !c.ok).map((c) => c.name);
    assert.ok(failed.includes("manifest stored size"), failed.join(", "));
    assert.ok(failed.includes("object sha256"), failed.join(", "));
  });

  test("a manifest with edited sizes is invalid, and verify names each edited size", async () => {
    const m = withObject(sampleManifest("edited", T, a, "none", a.length, revA), a);
    const key = await plant("edited", a, { ...m, sizes: { ...m.sizes, plain: m.sizes.plain + 4096 } });
    // The plain size is only known once decoded: list cannot see it, verify does.
    const entry = await resolveBackup(store, key);
    const report = await verifyBackup(store, entry);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.checks.filter((c) => !c.ok).map((c) => c.name),
      ["manifest plain size"],
    );
    // Edited stored size (object size left alone): list sees the inconsistency.
    await writeFile(
      join(store.root, manifestKey(key)),
      serializeManifest({ ...m, sizes: { ...m.sizes, stored: m.sizes.stored + 1 } }),
    );
    const [edited] = (await listBackups(store)).filter((e) => e.cluster === "edited");
    assert.equal(edited?.state, "invalid");
    assert.match(edited?.problem ?? "", /manifest is inconsistent/);
  });

  test("an object from another save of the same size: list cannot tell, verify names the sha256 mismatch", async () => {
    const x = fakeSnapshot(1, 64);
    const y = fakeSnapshot(2, 64);
    const key = await plant("swapped", x, withObject(sampleManifest("swapped", T, x, "none", x.length), x));
    await writeFile(join(store.root, key), y);
    const entry = await resolveBackup(store, key);
    assert.equal(entry.state, "complete");
    const report = await verifyBackup(store, entry);
    const failed = report.checks.filter((c) => !c.ok && c.severity === "error").map((c) => c.name);
    assert.ok(failed.includes("object sha256"), failed.join(", "));
    assert.ok(failed.includes("manifest sha256"), failed.join(", "));
  });

  test("a manifest written before object checksums existed still lists, with a warning from verify", async () => {
    const key = await plant("old", b, sampleManifest("old", T, b, "none", b.length, revB));
    const entry = await resolveBackup(store, key);
    assert.equal(entry.state, "complete");
    const report = await verifyBackup(store, entry);
    assert.ok(report.ok);
    const warning = report.checks.find((c) => c.name === "object sha256");
    assert.equal(warning?.severity, "warning");
    assert.ok((await readFile(join(store.root, key))).equals(b));
  });
});
