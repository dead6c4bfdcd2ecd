import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { parseAllDocuments } from "yaml";
import { generateHybrid } from "../../src/age/hybrid.ts";
import { generateX25519 } from "../../src/age/x25519.ts";
import { RECIPIENT_PATTERN_TEXT } from "../../src/operator/recipient-pattern.ts";
import { backupSpecSchema, scheduleSpecSchema } from "../../src/operator/spec.ts";
import { badBackupCases, badScheduleCases, baseBackup, baseSchedule, DEPLOY, samples } from "./crd-cases.ts";

type Schema = Record<string, unknown>;

function crd(file: string) {
  return parseAllDocuments(readFileSync(join(DEPLOY, "crds", file), "utf8"))[0]!.toJS() as {
    spec: {
      names: { kind: string };
      versions: {
        schema: { openAPIV3Schema: Schema };
        subresources?: object;
        additionalPrinterColumns: { name: string; jsonPath: string }[];
      }[];
    };
  };
}
const backupCrd = crd("etcdbackups.yaml");
const scheduleCrd = crd("etcdbackupschedules.yaml");
const schemaOf = (c: typeof backupCrd) => c.spec.versions[0]!.schema.openAPIV3Schema;

/** OpenAPI v3 (the Kubernetes subset) to JSON Schema: drops the x-kubernetes-* extensions. */
function toJsonSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toJsonSchema);
  if (!s || typeof s !== "object") return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith("x-kubernetes-")) continue;
    out[k] =
      k === "properties"
        ? Object.fromEntries(Object.entries(v as Schema).map(([p, ps]) => [p, toJsonSchema(ps)]))
        : toJsonSchema(v);
  }
  return out;
}

/**
 * The structural schema rules of apiextensions.k8s.io/v1: every node outside value validations has a type;
 * inside allOf/anyOf/oneOf/not there is no type, default, additionalProperties or nullable, and every property
 * named there also exists in the structural part beside it.
 */
function structuralProblems(s: Schema, path: string, inLogic = false, siblings?: Schema): string[] {
  const out: string[] = [];
  if (inLogic) {
    for (const f of ["type", "default", "additionalProperties", "nullable", "description"]) {
      if (f in s) out.push(`${path}: ${f} inside a value validation`);
    }
    for (const p of Object.keys((s.properties as Schema) ?? {})) {
      if (!siblings || !(p in siblings)) out.push(`${path}.properties.${p}: not in the structural schema`);
    }
  } else if (!s.type && !s["x-kubernetes-int-or-string"] && !s["x-kubernetes-preserve-unknown-fields"]) {
    out.push(`${path}: no type`);
  }
  for (const [p, ps] of Object.entries((s.properties as Record<string, Schema>) ?? {})) {
    out.push(
      ...structuralProblems(ps, `${path}.${p}`, inLogic, (siblings?.[p] as Schema)?.properties as Schema),
    );
  }
  if (s.items) out.push(...structuralProblems(s.items as Schema, `${path}[]`, inLogic));
  if (s.additionalProperties && typeof s.additionalProperties === "object") {
    out.push(...structuralProblems(s.additionalProperties as Schema, `${path}{}`, inLogic));
  }
  for (const logic of ["oneOf", "anyOf", "allOf"]) {
    for (const [i, sub] of ((s[logic] as Schema[]) ?? []).entries()) {
      out.push(...structuralProblems(sub, `${path}.${logic}[${i}]`, true, (s.properties as Schema) ?? {}));
    }
  }
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, useDefaults: true });
const validateBackup = ajv.compile(toJsonSchema(schemaOf(backupCrd)) as object);
const validateSchedule = ajv.compile(toJsonSchema(schemaOf(scheduleCrd)) as object);

const validate = (doc: { kind: string }) => {
  const v = doc.kind === "EtcdBackup" ? validateBackup : validateSchedule;
  const ok = v(structuredClone(doc));
  return { ok, errors: ajv.errorsText(v.errors) };
};

describe("CRDs", () => {
  it("are structural schemas with a status subresource", () => {
    for (const c of [backupCrd, scheduleCrd]) {
      assert.deepEqual(structuralProblems(schemaOf(c), c.spec.names.kind), []);
      assert.deepEqual(c.spec.versions[0]!.subresources, { status: {} });
    }
  });

  it("keep the schedule's template.spec identical to the EtcdBackup's spec", () => {
    const template = ((schemaOf(scheduleCrd).properties as Schema).spec as Schema).properties as Schema;
    assert.deepEqual(
      ((template.template as Schema).properties as Schema).spec,
      (schemaOf(backupCrd).properties as Schema).spec,
    );
  });

  it("print phase, size, revision and age for EtcdBackups", () => {
    const cols = backupCrd.spec.versions[0]!.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`);
    for (const c of [
      "Phase=.status.phase",
      "Size=.status.storedSize",
      "Revision=.status.revision",
      "Age=.metadata.creationTimestamp",
    ]) {
      assert.ok(cols.includes(c), c);
    }
  });

  it("accept every sample, which the operator's own check accepts too", () => {
    const all = samples();
    assert.ok(all.filter((s) => s.doc.kind === "EtcdBackup").length >= 2);
    assert.ok(all.filter((s) => s.doc.kind === "EtcdBackupSchedule").length >= 2);
    for (const { file, doc } of all) {
      const r = validate(doc);
      assert.ok(r.ok, `${file}: ${r.errors}`);
      const own = doc.kind === "EtcdBackup" ? backupSpecSchema : scheduleSpecSchema;
      assert.ok(
        own.safeParse(doc.spec).success,
        `${file}: ${JSON.stringify(own.safeParse(doc.spec).error?.issues)}`,
      );
    }
  });

  it("apply defaults: compression zstd, deletionPolicy Retain, TLS key names, concurrencyPolicy Forbid", () => {
    const doc = structuredClone(
      samples().find((s) => s.file === "etcdbackupschedule-etcd.yaml")!.doc,
    ) as never as {
      spec: { suspend?: boolean; concurrencyPolicy?: string; template: { spec: Record<string, never> } };
    };
    delete doc.spec.concurrencyPolicy;
    assert.ok(validateSchedule(doc));
    assert.equal(doc.spec.concurrencyPolicy, "Forbid");
    assert.equal(doc.spec.suspend, false);
    const t = doc.spec.template.spec as unknown as {
      compression: string;
      source: { etcd: { tlsSecretRef: { caKey: string; keyKey: string } } };
    };
    assert.equal(t.compression, "zstd");
    assert.equal(t.source.etcd.tlsSecretRef.caKey, "ca.crt");
    assert.equal(t.source.etcd.tlsSecretRef.keyKey, "tls.key");
  });

  for (const [what, mutate] of badBackupCases) {
    it(`reject an EtcdBackup with ${what}`, () => {
      const d = baseBackup();
      assert.ok(validate(d).ok);
      mutate(d);
      assert.equal(validate(d).ok, false);
      // The operator's own check agrees (recipients it checks by parsing them, when the backup runs).
      if (!what.includes("recipient")) assert.equal(backupSpecSchema.safeParse(d.spec).success, false);
    });
  }

  it("accept classic and post-quantum (age1pq1…) recipients, by one pattern the operator shares", () => {
    for (const c of [backupCrd, scheduleCrd]) {
      const text = JSON.stringify(schemaOf(c));
      assert.equal(
        text.split(`"pattern":${JSON.stringify(RECIPIENT_PATTERN_TEXT)}`).length,
        2,
        c.spec.names.kind,
      );
    }
    const d = baseBackup();
    d.spec.encryption.recipients = [generateHybrid().recipient];
    assert.ok(validate(d).ok, validate(d).errors);
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    d.spec.encryption.recipients = [generateX25519().recipient];
    assert.ok(validate(d).ok, validate(d).errors);
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    const s = baseSchedule() as unknown as {
      spec: { template: { spec: { encryption: { recipients: string[] } } } };
    };
    s.spec.template.spec.encryption.recipients = [generateHybrid().recipient];
    assert.ok(validate(s as never).ok);
  });

  it("accept object lock settings; the API server and the operator require days with a mode", () => {
    const d = baseBackup();
    d.spec.destination.s3.objectLock = { mode: "compliance", days: 30, legalHold: true };
    assert.ok(validate(d).ok, validate(d).errors);
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    d.spec.destination.s3.objectLock = { legalHold: true };
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    d.spec.destination.s3.objectLock = { mode: "governance" };
    assert.equal(backupSpecSchema.safeParse(d.spec).success, false);
    // The CRD says the same with a CEL rule (ajv does not run CEL; the rule's presence is checked here).
    const s3 = (
      (
        (((schemaOf(backupCrd).properties as Schema).spec as Schema).properties as Schema)
          .destination as Schema
      ).properties as Schema
    ).s3 as Schema;
    const lock = (s3.properties as Schema).objectLock as Schema;
    assert.deepEqual(lock["x-kubernetes-validations"], [
      { rule: "has(self.mode) == has(self.days)", message: "mode and days go together" },
    ]);
  });

  it("accept the same object lock under gcs and azureBlob, with the same CEL rule; the operator routes it to the job", async () => {
    const destinations = (
      (((schemaOf(backupCrd).properties as Schema).spec as Schema).properties as Schema).destination as Schema
    ).properties as Schema;
    for (const [kind, where] of [
      ["gcs", { bucket: "etcd-backups", prefix: "prod" }],
      ["azureBlob", { container: "etcd-backups", prefix: "prod" }],
    ] as const) {
      const d = baseBackup() as { spec: { destination: Record<string, unknown> } };
      d.spec.destination = {
        [kind]: { ...where, objectLock: { mode: "compliance", days: 30, legalHold: true } },
      };
      assert.ok(validate(d as never).ok, `${kind}: ${validate(d as never).errors}`);
      assert.ok(backupSpecSchema.safeParse(d.spec).success, kind);
      d.spec.destination = { [kind]: { ...where, objectLock: { mode: "governance" } } };
      assert.equal(backupSpecSchema.safeParse(d.spec).success, false, kind);
      d.spec.destination = { [kind]: { ...where, objectLock: { mode: "strict", days: 1 } } };
      assert.equal(validate(d as never).ok, false, kind);
      const lock = ((destinations[kind] as Schema).properties as Schema).objectLock as Schema;
      assert.deepEqual(lock["x-kubernetes-validations"], [
        { rule: "has(self.mode) == has(self.days)", message: "mode and days go together" },
      ]);
    }
    const { jobConfigFromSpec } = await import("../../src/operator/resolve.ts");
    const noReads = { secret: async () => null, configMap: async () => null };
    const spec = baseBackup().spec as unknown as Parameters<typeof jobConfigFromSpec>[0];
    spec.source = { etcd: { endpoints: ["https://10.0.0.1:2379"] } };
    spec.destination = { gcs: { bucket: "etcd-backups", objectLock: { mode: "governance", days: 3 } } };
    const input = await jobConfigFromSpec(spec, "prod", {
      namespace: "default",
      reader: noReads,
      warn: () => {},
    });
    assert.deepEqual(input.objectLock, { mode: "governance", days: 3 });
  });

  for (const [what, mutate] of badScheduleCases) {
    it(`reject an EtcdBackupSchedule with ${what}`, () => {
      const d = baseSchedule();
      assert.ok(validate(d).ok);
      mutate(d);
      assert.equal(validate(d).ok, false);
    });
  }

  it("accept a 6-field cron with seconds", () => {
    const d = baseSchedule();
    d.spec.schedule = "*/30 * * * * *";
    assert.ok(validate(d).ok);
  });
});
