import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z as zod } from "zod";
import { type Infer, z as ours } from "../src/validation.ts";

/** The messages of a failed parse, each prefixed by its path. */
function problems(
  schema: { safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } } },
  v: unknown,
) {
  const r = schema.safeParse(v);
  assert.equal(r.success, false, "expected the value to be refused");
  return (r.error!.issues as { path: PropertyKey[]; message: string }[]).map(
    (i) => `${i.path.map(String).join(".")}: ${i.message}`,
  );
}

// The semantics here are the ones error messages of src/config/schema.ts depend on; they are zod 4's (the
// schema was checked against zod itself on 80,000 random settings when it moved to this validator). Each case runs
// against zod too (a development dependency, kept for this comparison only), so a difference shows as one side failing.
const IMPLEMENTATIONS = [
  ["src/validation.ts", ours],
  ["zod", zod as unknown as typeof ours],
] as const;

for (const [implementation, z] of IMPLEMENTATIONS)
  describe(`validation (${implementation})`, () => {
    it("names the expected and received types as zod does", () => {
      assert.deepEqual(problems(z.string(), 5), [": Invalid input: expected string, received number"]);
      assert.deepEqual(problems(z.number(), Number.NaN), [": Invalid input: expected number, received NaN"]);
      assert.deepEqual(problems(z.number(), "1"), [": Invalid input: expected number, received string"]);
      assert.deepEqual(problems(z.boolean(), null), [": Invalid input: expected boolean, received null"]);
      assert.deepEqual(problems(z.array(z.string()), {}), [
        ": Invalid input: expected array, received object",
      ]);
      assert.deepEqual(problems(z.instanceof(Buffer), new Uint8Array(1)), [
        ": Invalid input: expected Buffer, received Uint8Array",
      ]);
      assert.deepEqual(problems(z.enum(["zstd", "none"]), "gzip"), [
        ': Invalid option: expected one of "zstd"|"none"',
      ]);
      assert.deepEqual(problems(z.literal("etcd"), "talos"), [': Invalid input: expected "etcd"']);
    });

    it("runs a length check even after a type mismatch, as zod does (an empty list given for a string is empty)", () => {
      const str = z.string().trim().min(1, "must not be empty");
      assert.deepEqual(problems(str, []), [
        ": Invalid input: expected string, received array",
        ": must not be empty",
      ]);
      assert.deepEqual(problems(str, ["x"]), [": Invalid input: expected string, received array"]);
      assert.deepEqual(problems(str, "  "), [": must not be empty"]);
      assert.equal(str.parse("  a "), "a");
    });

    it("lets refinements after a failed one run, but nothing after a failed integer check", () => {
      const n = z.number().min(1, "too small").max(0, "too big");
      assert.deepEqual(problems(n, 0.5), [": too small", ": too big"]);
      const whole = z.number().int("not whole").min(5, "below 5");
      assert.deepEqual(problems(whole, 1.5), [": not whole"]);
      assert.deepEqual(problems(z.number().positive(), 0), [": Too small: expected number to be >0"]);
      assert.deepEqual(problems(z.number().int(), 2 ** 60), [
        `: Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`,
      ]);
    });

    it("stops a pipe or transform at the first problem", () => {
      let ran = false;
      const t = z
        .string()
        .refine((s) => s !== "bad", "is bad")
        .transform((s) => {
          ran = true;
          return s.length;
        });
      assert.deepEqual(problems(t, "bad"), [": is bad"]);
      assert.equal(ran, false);
      assert.equal(t.parse("four"), 4);
      const coerced = z.union([z.number(), z.string().trim()]).pipe(z.coerce.number("is not a number").int());
      assert.equal(coerced.parse(" 42 "), 42);
      assert.deepEqual(problems(coerced, "x"), [": is not a number"]);
    });

    it("a transform's issue aborts, and it returns NEVER", () => {
      const span = z.string().transform((v, ctx) => {
        if (!/^\d+d$/.test(v)) {
          ctx.addIssue({ code: "custom", message: "is not a span" });
          return z.NEVER;
        }
        return Number.parseInt(v, 10);
      });
      assert.equal(span.parse("7d"), 7);
      assert.deepEqual(problems(span, "7x"), [": is not a span"]);
    });

    it("a union returns the first option that fits, else the one that got past its type, else Invalid input", () => {
      const bool = z.union([
        z.boolean(),
        z
          .string()
          .trim()
          .toLowerCase()
          .refine((v) => ["true", "false"].includes(v), "is not true or false")
          .transform((v) => v === "true"),
      ]);
      assert.equal(bool.parse(" TRUE "), true);
      assert.equal(bool.parse(false), false);
      // The string option got past its type, but its transform (a pipe) marks it aborted: no single option left.
      assert.deepEqual(problems(bool, "maybe"), [": Invalid input"]);
      assert.deepEqual(problems(bool, 5), [": Invalid input"]);
      const oneLeft = z.union([z.number(), z.string().min(3, "short")]);
      assert.deepEqual(problems(oneLeft, "ab"), [": short"]);
    });

    it("objects: shape order, absent optional keys left out, unknown keys dropped or (strict) reported last", () => {
      const o = z.object({ b: z.number().optional(), a: z.string().default("x"), c: z.boolean().optional() });
      assert.deepEqual(Object.keys(o.parse({ c: true, zz: 1 })), ["a", "c"]);
      assert.deepEqual(o.parse({ b: undefined }), { b: undefined, a: "x" });
      const strict = o.strict();
      const r = strict.safeParse({ zz: 1, b: "1", yy: 2 });
      assert.equal(r.success, false);
      assert.deepEqual(
        r.error!.issues.map((i) => [i.code, i.path, i.keys]),
        [
          ["invalid_type", ["b"], undefined],
          ["unrecognized_keys", [], ["zz", "yy"]],
        ],
      );
      assert.deepEqual(problems(o, null), [": Invalid input: expected object, received null"]);
    });

    it("a default stands in for an absent value unvalidated, and is a fresh copy each time", () => {
      const list = z.array(z.string()).default([]);
      const a = list.parse(undefined);
      a.push("x");
      assert.deepEqual(list.parse(undefined), []);
      assert.equal(z.number().min(5).default(1).parse(undefined), 1);
    });

    it("a discriminated union picks its option by the tag, and names the tags it knows", () => {
      const u = z.discriminatedUnion("kind", [
        z.object({ kind: z.literal("etcd"), endpoints: z.array(z.string()).min(1) }),
        z.object({ kind: z.literal("file"), path: z.string() }),
      ]);
      assert.deepEqual(u.parse({ kind: "file", path: "p", extra: 1 }), { kind: "file", path: "p" });
      assert.deepEqual(problems(u, { kind: "etcd", endpoints: [] }), [
        "endpoints: Too small: expected array to have >=1 items",
      ]);
      assert.deepEqual(problems(u, { kind: "s3" }), [
        "kind: Invalid discriminator value. Expected 'etcd' | 'file'",
      ]);
    });

    it("datetime: RFC 3339 with seconds, Z or an offset, a real calendar day", () => {
      const d = z.string().datetime({ offset: true });
      for (const ok of [
        "2026-11-30T12:00:00Z",
        "2024-02-29T00:00:00.123456+01:00",
        "2000-02-29T23:59:59-12:30",
      ])
        assert.equal(d.parse(ok), ok);
      for (const bad of [
        "2026-02-29T00:00:00Z",
        "2026-11-30T12:00Z",
        "2026-11-30T12:00:00+0100",
        "2100-02-29T00:00:00Z",
      ])
        assert.deepEqual(problems(d, bad), [": Invalid ISO datetime"]);
      assert.deepEqual(problems(z.string().datetime(), "2026-11-30T12:00:00+01:00"), [
        ": Invalid ISO datetime",
      ]);
    });

    it("records: an object as a map, every key and value checked; refine can report at a path below", () => {
      const labels = z.record(z.string(), z.string());
      assert.deepEqual(labels.parse({ app: "etcd", tier: "" }), { app: "etcd", tier: "" });
      assert.deepEqual(problems(labels, { app: "etcd", replicas: 2 }), [
        "replicas: Invalid input: expected string, received number",
      ]);
      assert.deepEqual(problems(labels, []), [": Invalid input: expected record, received array"]);
      assert.deepEqual(problems(labels, null), [": Invalid input: expected record, received null"]);
      assert.deepEqual(problems(z.record(z.string().min(2), z.number()), { a: 1, bb: 2 }), [
        "a: Invalid key in record",
      ]);
      const spec = z
        .object({ continuous: z.boolean().optional(), source: z.object({ etcd: z.string() }) })
        .refine((v) => v.continuous !== true, { message: "no log here", path: ["continuous"] });
      assert.deepEqual(problems(spec, { continuous: true, source: { etcd: "x" } }), [
        "continuous: no log here",
      ]);
      assert.deepEqual(problems(spec, { continuous: true, source: {} }), [
        "source.etcd: Invalid input: expected string, received undefined",
      ]);
    });

    it("infers the output type (a compile-time check)", () => {
      const s = z.object({
        n: z.number(),
        tags: z.array(z.string()).default([]),
        mode: z.enum(["a", "b"]).optional(),
      });
      const v: Infer<typeof s> = s.parse({ n: 1 });
      const tags: string[] = v.tags;
      const mode: "a" | "b" | undefined = v.mode;
      assert.deepEqual([tags, mode], [[], undefined]);
    });
  });
