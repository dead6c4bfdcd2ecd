import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { parseAllDocuments } from "yaml";
import { generateHybrid } from "../../src/age/hybrid.ts";
import { generateX25519 } from "../../src/age/x25519.ts";
import { RECIPIENT_PATTERN_TEXT } from "../../src/operator/recipient-pattern.ts";
import { backupSpecSchema, scheduleSpecSchema } from "../../src/operator/spec.ts";

const DEPLOY = join(import.meta.dirname, "..", "..", "deploy", "operator");
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

function samples(): { file: string; doc: { kind: string; spec: unknown } }[] {
  const dir = join(DEPLOY, "samples");
  return readdirSync(dir).flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), "utf8"))
      .map((d) => d.toJS() as { kind: string; spec: unknown } | null)
      .filter(
        (doc): doc is { kind: string; spec: unknown } =>
          doc?.kind === "EtcdBackup" || doc?.kind === "EtcdBackupSchedule",
      )
      .map((doc) => ({ file, doc })),
  );
}

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

  const base = () =>
    structuredClone(samples().find((s) => s.file === "etcdbackup-etcd.yaml")!.doc) as never as {
      kind: string;
      spec: Record<string, unknown> & {
        source: Record<string, unknown>;
        destination: { s3: Record<string, unknown> };
        encryption: Record<string, unknown>;
      };
    };
  const cases: [string, (d: ReturnType<typeof base>) => void][] = [
    ["a missing destination", (d) => delete (d.spec as Record<string, unknown>).destination],
    ["a missing bucket", (d) => delete d.spec.destination.s3.bucket],
    ["no encryption decision", (d) => (d.spec.encryption = {})],
    ["none: false without recipients", (d) => (d.spec.encryption = { none: false })],
    ["none: true with recipients", (d) => (d.spec.encryption.none = true)],
    ["a bad compression enum", (d) => (d.spec.compression = "gzip")],
    ["a bad deletionPolicy enum", (d) => (d.spec.deletionPolicy = "Orphan")],
    ["a recipient that is not age1...", (d) => (d.spec.encryption.recipients = ["ssh-ed25519 AAAA"])],
    ["a bucket name with capitals", (d) => (d.spec.destination.s3.bucket = "My_Bucket")],
    ["an endpoint without scheme", (d) => (d.spec.destination.s3.endpoint = "minio:9000")],
    ["a prefix with a leading slash", (d) => (d.spec.destination.s3.prefix = "/clusters")],
    ["both etcd and talos", (d) => (d.spec.source.talos = { inCluster: true })],
    ["no source", (d) => (d.spec.source = {})],
    [
      "talos with neither inCluster nor a Secret",
      (d) => (d.spec.source = { talos: { nodes: ["10.0.0.1"] } }),
    ],
    ["talos inCluster: false", (d) => (d.spec.source = { talos: { inCluster: false } })],
    ["a compression level of 0", (d) => (d.spec.compressionLevel = 0)],
    ["no etcd endpoint", (d) => (d.spec.source = { etcd: { endpoints: [] } })],
    [
      "an age1pq1 recipient one character short",
      (d) => (d.spec.encryption.recipients = [generateHybrid().recipient.slice(0, -1)]),
    ],
    [
      "an object lock mode that is not one",
      (d) => (d.spec.destination.s3.objectLock = { mode: "strict", days: 1 }),
    ],
    ["object lock days of 0", (d) => (d.spec.destination.s3.objectLock = { mode: "governance", days: 0 })],
  ];
  for (const [what, mutate] of cases) {
    it(`reject an EtcdBackup with ${what}`, () => {
      const d = base();
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
    const d = base();
    d.spec.encryption.recipients = [generateHybrid().recipient];
    assert.ok(validate(d).ok, validate(d).errors);
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    d.spec.encryption.recipients = [generateX25519().recipient];
    assert.ok(validate(d).ok, validate(d).errors);
    assert.ok(backupSpecSchema.safeParse(d.spec).success);
    const s = sched() as unknown as {
      spec: { template: { spec: { encryption: { recipients: string[] } } } };
    };
    s.spec.template.spec.encryption.recipients = [generateHybrid().recipient];
    assert.ok(validate(s as never).ok);
  });

  it("accept object lock settings; the API server and the operator require days with a mode", () => {
    const d = base();
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

  const sched = () =>
    structuredClone(samples().find((s) => s.file === "etcdbackupschedule-etcd.yaml")!.doc) as never as {
      kind: string;
      spec: Record<string, unknown> & { retention: Record<string, unknown> };
    };
  const scheduleCases: [string, (d: ReturnType<typeof sched>) => void][] = [
    ["no schedule", (d) => delete d.spec.schedule],
    ["a cron with 4 fields", (d) => (d.spec.schedule = "* * * *")],
    ["a bad concurrencyPolicy", (d) => (d.spec.concurrencyPolicy = "Sometimes")],
    ["keepLast 0", (d) => (d.spec.retention.keepLast = 0)],
    ["keepWithin without unit", (d) => (d.spec.retention.keepWithin = "7")],
    ["no template", (d) => delete d.spec.template],
  ];
  for (const [what, mutate] of scheduleCases) {
    it(`reject an EtcdBackupSchedule with ${what}`, () => {
      const d = sched();
      assert.ok(validate(d).ok);
      mutate(d);
      assert.equal(validate(d).ok, false);
    });
  }

  it("accept a 6-field cron with seconds", () => {
    const d = sched();
    d.spec.schedule = "*/30 * * * * *";
    assert.ok(validate(d).ok);
  });
});
