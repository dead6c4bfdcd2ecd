/**
 * The small schema validator etcd-backup's configuration (config/schema.ts), manifests (catalog/manifest.ts) and
 * the operator's check of its resources (operator/spec.ts) are written in. It has the shape of zod's API (`z.object({...}).strict()`, `.optional()`, `.default()`, `.pipe()`,
 * `Infer`) and zod 4's semantics and English messages for what those two modules use, and nothing more.
 *
 * Why not zod itself: loading zod is ~190 modules (every locale included), ~17 MiB of RSS and 0.1-0.3 s before
 * a command can start; `save` validates its settings and writes a manifest, so it paid all of that on the way to
 * a 128 MiB memory limit (issue 22). This is under 1% of that.
 *
 * Semantics kept from zod 4, because error messages and outputs depend on them:
 * - a schema first checks the type (a mismatch aborts), then runs its checks in order; a failed check of a
 *   refinement kind (`min`, `refine`) lets the following checks run, a failed type or `int` check does not;
 * - a pipe (and so a transform) does not run its second half when the first has any issue;
 * - a union returns the first option without issues; else the one option that got past its type check (its
 *   issues); else one "Invalid input";
 * - an object validates every key of its shape (in shape order, which is the output's key order), leaves out
 *   an optional key that was absent, drops unknown keys (or with `.strict()` reports them, after the others);
 * - `.default(v)` stands in for an absent value without validating it.
 */

/** A problem found: where (the path from the validated value), its zod-style code, and its message. */
export interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  /** `unrecognized_keys`: the unknown keys. */
  keys?: string[];
  /** true: later checks of the same schema still run (a refinement); absent: it aborts them. */
  continue?: boolean;
}

interface Payload {
  value: unknown;
  issues: Issue[];
  aborted?: boolean;
}

/** A check of a schema's value; one with `when` runs whenever `when` says so, even after a type mismatch. */
type Check = ((payload: Payload) => void) & { when?: (payload: Payload) => boolean };

/** When zod's length checks run: on anything with a length, so an empty array given for a string is "empty" too. */
const hasLength = (p: Payload): boolean =>
  p.value !== null && p.value !== undefined && (p.value as { length?: unknown }).length !== undefined;

function lengthCheck(check: (payload: Payload) => void): Check {
  return Object.assign(check, { when: hasLength });
}

/** The `.min(n)` check of strings and arrays, with zod's message for `what` counted in `units`. */
function minLength(n: number, message: Message | undefined, what: string, units: string): Check {
  return lengthCheck((p) => {
    if (lengthOf(p.value) < n)
      p.issues.push({
        code: "too_small",
        path: [],
        message: messageOf(message) ?? `Too small: expected ${what} to have >=${n} ${units}`,
        continue: true,
      });
  });
}

/** Length as zod counts it: code points of a string, elements of an array. */
const lengthOf = (v: unknown): number => (typeof v === "string" ? [...v].length : (v as unknown[]).length);

/** What `ctx.addIssue` takes in `superRefine` and `transform`. */
export interface IssueInput {
  code?: string;
  message: string;
}

export interface RefinementContext {
  addIssue(issue: IssueInput): void;
}

export type SafeParseResult<T> =
  | { success: true; data: T; error?: undefined }
  | { success: false; data?: undefined; error: ValidationError };

/** Thrown by `parse`; `issues` as zod's ZodError has them. */
export class ValidationError extends Error {
  readonly issues: Issue[];
  constructor(issues: Issue[]) {
    super(issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`).join("; "));
    this.name = "ValidationError";
    this.issues = issues;
  }
}

/** zod's `params` argument: a message, or `{ error: message }`. */
type Message = string | { error?: string; message?: string };
const messageOf = (m: Message | undefined): string | undefined =>
  typeof m === "string" ? m : (m?.error ?? m?.message);

function aborted(p: Payload, from = 0): boolean {
  if (p.aborted === true) return true;
  for (let i = from; i < p.issues.length; i++) if (p.issues[i]!.continue !== true) return true;
  return false;
}

/** Stopped by a check that aborts outright (`continue: false`) or a failed pipe, not by a type mismatch. */
function explicitlyAborted(p: Payload): boolean {
  return p.aborted === true || p.issues.some((i) => i.continue === false);
}

/** zod's name of a value's type in "received ..." messages. */
function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : Number.isFinite(v) ? "number" : String(v);
  if (typeof v === "object") {
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto === Object.prototype || proto === null) return "object";
    return (v as object).constructor?.name ?? "object";
  }
  return typeof v;
}

function stringify(v: unknown): string {
  return typeof v === "bigint" ? `${v}n` : typeof v === "string" ? JSON.stringify(v) : String(v);
}

function calendarDay(year: number, month: number, day: number): boolean {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return days !== undefined && day >= 1 && day <= days;
}

function invalidType(expected: string, input: unknown, message?: string): Issue {
  return {
    code: "invalid_type",
    path: [],
    message: message ?? `Invalid input: expected ${expected}, received ${typeName(input)}`,
  };
}

/** What an object or a record schema accepts: an object that is not an array. */
const isKeyed = (v: unknown): v is object => v !== null && typeof v === "object" && !Array.isArray(v);

function prefix(key: PropertyKey, issues: Issue[]): Issue[] {
  return issues.map((i) => ({ ...i, path: [key, ...i.path] }));
}

function clone<T>(v: T): T {
  if (Array.isArray(v)) return [...v] as T;
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype)
    return { ...v } as T;
  return v;
}

export abstract class Schema<Output, Input = Output> {
  declare readonly _output: Output;
  declare readonly _input: Input;
  protected checks: readonly Check[] = [];

  /** Checks the type and converts; pushes issues onto the payload. */
  protected abstract parseType(p: Payload): Payload;

  /** @internal the type, then the checks, as zod runs them. */
  run(p: Payload): Payload {
    const r = this.parseType(p);
    let isAborted = aborted(r);
    for (const check of this.checks) {
      if (check.when) {
        if (explicitlyAborted(r) || !check.when(r)) continue;
      } else if (isAborted) continue;
      const before = r.issues.length;
      check(r);
      if (r.issues.length !== before) isAborted = aborted(r, before);
    }
    return r;
  }

  /** A copy of this schema, to change without changing this one (schemas are shared, as in zod). */
  protected copy(): this {
    const copy = Object.create(Object.getPrototypeOf(this) as object) as this;
    Object.assign(copy, this);
    return copy;
  }

  /** A copy of this schema with one more check. */
  protected with(check: Check): this {
    const copy = this.copy();
    copy.checks = [...this.checks, check];
    return copy;
  }

  safeParse(value: unknown): SafeParseResult<Output> {
    const r = this.run({ value, issues: [] });
    if (r.issues.length > 0) return { success: false, error: new ValidationError(r.issues) };
    return { success: true, data: r.value as Output };
  }

  parse(value: unknown): Output {
    const r = this.safeParse(value);
    if (!r.success) throw r.error;
    return r.data;
  }

  optional(): Schema<Output | undefined, Input | undefined> {
    return new OptionalSchema(this);
  }

  nullable(): Schema<Output | null, Input | null> {
    return new NullableSchema(this);
  }

  default(value: Exclude<Output, undefined>): Schema<Exclude<Output, undefined>, Input | undefined> {
    return new DefaultSchema(this, value);
  }

  /** `message` may name a `path` below this value where the issue is reported (zod's `refine(fn, { path })`). */
  refine(
    ok: (value: Output) => boolean,
    message?: Message | { message?: string; path?: PropertyKey[] },
  ): this {
    // Issue paths are never changed in place (`prefix` makes new ones), so one copy serves every issue.
    const path = typeof message === "object" && "path" in message ? [...(message.path ?? [])] : [];
    return this.with((p) => {
      if (!ok(p.value as Output))
        p.issues.push({
          code: "custom",
          path,
          message: messageOf(message) ?? "Invalid input",
          continue: true,
        });
    });
  }

  superRefine(refine: (value: Output, ctx: RefinementContext) => void): this {
    return this.with((p) => {
      refine(p.value as Output, {
        addIssue: (i) =>
          p.issues.push({ code: i.code ?? "custom", path: [], message: i.message, continue: true }),
      });
    });
  }

  transform<T>(fn: (value: Output, ctx: RefinementContext) => T): Schema<T, Input> {
    return new PipeSchema(this, new TransformSchema(fn));
  }

  pipe<N extends Schema<unknown, unknown>>(next: N): Schema<N["_output"], Input> {
    return new PipeSchema(this, next as Schema<N["_output"], unknown>);
  }
}

/** Returned by a transform that reported an issue (zod's `z.NEVER`). */
export const NEVER = Object.freeze({ never: true }) as never;

export type Infer<S extends Schema<unknown, unknown>> = S["_output"];
export type InputOf<S extends Schema<unknown, unknown>> = S["_input"];

class OptionalSchema<O, I> extends Schema<O | undefined, I | undefined> {
  readonly inner: Schema<O, I>;
  constructor(inner: Schema<O, I>) {
    super();
    this.inner = inner;
  }
  protected parseType(p: Payload): Payload {
    return p.value === undefined ? p : this.inner.run(p);
  }
}

class NullableSchema<O, I> extends Schema<O | null, I | null> {
  readonly inner: Schema<O, I>;
  constructor(inner: Schema<O, I>) {
    super();
    this.inner = inner;
  }
  protected parseType(p: Payload): Payload {
    return p.value === null ? p : this.inner.run(p);
  }
}

class DefaultSchema<O, I> extends Schema<Exclude<O, undefined>, I | undefined> {
  readonly inner: Schema<O, I>;
  readonly fallback: Exclude<O, undefined>;
  constructor(inner: Schema<O, I>, fallback: Exclude<O, undefined>) {
    super();
    this.inner = inner;
    this.fallback = fallback;
  }
  protected parseType(p: Payload): Payload {
    if (p.value === undefined) {
      p.value = clone(this.fallback);
      return p;
    }
    return this.inner.run(p);
  }
}

class PipeSchema<O, I> extends Schema<O, I> {
  readonly first: Schema<unknown, I>;
  readonly second: Schema<O, unknown>;
  constructor(first: Schema<unknown, I>, second: Schema<O, unknown>) {
    super();
    this.first = first;
    this.second = second;
  }
  protected parseType(p: Payload): Payload {
    const left = this.first.run(p);
    if (left.issues.some((i) => i.code !== "unrecognized_keys")) {
      left.aborted = true;
      return left;
    }
    return this.second.run(left);
  }
}

class TransformSchema<In, O> extends Schema<O, In> {
  readonly fn: (value: In, ctx: RefinementContext) => O;
  constructor(fn: (value: In, ctx: RefinementContext) => O) {
    super();
    this.fn = fn;
  }
  protected parseType(p: Payload): Payload {
    p.value = this.fn(p.value as In, {
      addIssue: (i) => p.issues.push({ code: i.code ?? "custom", path: [], message: i.message }),
    });
    return p;
  }
}

class StringSchema extends Schema<string> {
  protected parseType(p: Payload): Payload {
    if (typeof p.value !== "string") p.issues.push(invalidType("string", p.value));
    return p;
  }
  min(n: number, message?: Message): this {
    return this.with(minLength(n, message, "string", "characters"));
  }
  regex(re: RegExp, message?: Message): this {
    return this.with((p) => {
      re.lastIndex = 0;
      if (!re.test(p.value as string))
        p.issues.push({
          code: "invalid_format",
          path: [],
          message: messageOf(message) ?? `Invalid string: must match pattern ${re}`,
          continue: true,
        });
    });
  }
  /**
   * An RFC 3339 date-time as zod 4's `datetime()` takes it: seconds required, fractions allowed, `Z` (with
   * `offset`, also `+hh:mm`/`-hh:mm`), a real calendar day.
   */
  datetime(options: { offset?: boolean } = {}): this {
    const zone = options.offset ? "(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)" : "Z";
    const re = new RegExp(
      `^(\\d{4})-(\\d{2})-(\\d{2})T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?${zone}$`,
    );
    return this.with((p) => {
      const m = re.exec(p.value as string);
      if (!m || !calendarDay(Number(m[1]), Number(m[2]), Number(m[3])))
        p.issues.push({ code: "invalid_format", path: [], message: "Invalid ISO datetime", continue: true });
    });
  }
  trim(): this {
    return this.with((p) => {
      p.value = (p.value as string).trim();
    });
  }
  toLowerCase(): this {
    return this.with((p) => {
      p.value = (p.value as string).toLowerCase();
    });
  }
}

class NumberSchema<I = number> extends Schema<number, I> {
  readonly coerce: boolean;
  readonly typeMessage?: string;
  constructor(coerce: boolean = false, typeMessage?: string) {
    super();
    this.coerce = coerce;
    this.typeMessage = typeMessage;
  }
  protected parseType(p: Payload): Payload {
    if (this.coerce) {
      try {
        p.value = Number(p.value);
      } catch {
        // zod leaves a value Number() cannot convert (a Symbol) as it is: reported below.
      }
    }
    const v = p.value;
    if (typeof v !== "number" || !Number.isFinite(v))
      p.issues.push(invalidType("number", v, this.typeMessage));
    return p;
  }
  int(message?: Message): this {
    return this.with((p) => {
      const v = p.value as number;
      if (!Number.isInteger(v)) {
        p.issues.push({ ...invalidType("int", v, messageOf(message)), continue: false });
      } else if (!Number.isSafeInteger(v)) {
        const big = v > 0;
        p.issues.push({
          code: big ? "too_big" : "too_small",
          path: [],
          message:
            messageOf(message) ??
            (big
              ? `Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`
              : `Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`),
          continue: true,
        });
      }
    });
  }
  private bound(kind: "min" | "max", n: number, inclusive: boolean, message?: Message): this {
    return this.with((p) => {
      const v = p.value as number;
      const ok = kind === "min" ? (inclusive ? v >= n : v > n) : inclusive ? v <= n : v < n;
      if (ok) return;
      const adj = kind === "min" ? (inclusive ? ">=" : ">") : inclusive ? "<=" : "<";
      p.issues.push({
        code: kind === "min" ? "too_small" : "too_big",
        path: [],
        message:
          messageOf(message) ?? `Too ${kind === "min" ? "small" : "big"}: expected number to be ${adj}${n}`,
        continue: true,
      });
    });
  }
  min(n: number, message?: Message): this {
    return this.bound("min", n, true, message);
  }
  max(n: number, message?: Message): this {
    return this.bound("max", n, true, message);
  }
  positive(message?: Message): this {
    return this.bound("min", 0, false, message);
  }
  nonnegative(message?: Message): this {
    return this.bound("min", 0, true, message);
  }
}

class BooleanSchema extends Schema<boolean> {
  protected parseType(p: Payload): Payload {
    if (typeof p.value !== "boolean") p.issues.push(invalidType("boolean", p.value));
    return p;
  }
}

class ValuesSchema<T extends string | number> extends Schema<T> {
  readonly values: readonly T[];
  readonly message?: string;
  constructor(values: readonly T[], message?: string) {
    super();
    this.values = values;
    this.message = message;
  }
  protected parseType(p: Payload): Payload {
    if (!this.values.includes(p.value as T)) {
      const expected =
        this.values.length === 1
          ? `Invalid input: expected ${stringify(this.values[0])}`
          : `Invalid option: expected one of ${this.values.map(stringify).join("|")}`;
      p.issues.push({ code: "invalid_value", path: [], message: this.message ?? expected });
    }
    return p;
  }
}

class InstanceSchema<T> extends Schema<T> {
  readonly cls: abstract new (
    ...args: never[]
  ) => T;
  constructor(cls: abstract new (...args: never[]) => T) {
    super();
    this.cls = cls;
  }
  protected parseType(p: Payload): Payload {
    if (!(p.value instanceof this.cls)) p.issues.push(invalidType(this.cls.name, p.value));
    return p;
  }
}

class ArraySchema<E extends Schema<unknown, unknown>> extends Schema<E["_output"][], E["_input"][]> {
  readonly element: E;
  constructor(element: E) {
    super();
    this.element = element;
  }
  protected parseType(p: Payload): Payload {
    if (!Array.isArray(p.value)) {
      p.issues.push(invalidType("array", p.value));
      return p;
    }
    const out: unknown[] = [];
    for (const [i, item] of (p.value as unknown[]).entries()) {
      const r = this.element.run({ value: item, issues: [] });
      p.issues.push(...prefix(i, r.issues));
      out.push(r.value);
    }
    p.value = out;
    return p;
  }
  min(n: number, message?: Message): this {
    return this.with(minLength(n, message, "array", "items"));
  }
}

/** An object used as a map: every own key checked by `key`, every value by `value` (zod's `z.record`). */
class RecordSchema<K extends Schema<string, unknown>, V extends AnySchema> extends Schema<
  Record<K["_output"], V["_output"]>,
  Record<string, V["_input"]>
> {
  /** The schemas every key and every value must pass. */
  readonly entry: { key: K; value: V };
  constructor(key: K, value: V) {
    super();
    this.entry = { key, value };
  }
  protected parseType(p: Payload): Payload {
    const input = p.value;
    if (!isKeyed(input)) {
      p.issues.push(invalidType("record", input));
      return p;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
      const key = this.entry.key.run({ value: k, issues: [] });
      if (key.issues.length > 0) {
        p.issues.push({ code: "invalid_key", path: [k], message: "Invalid key in record" });
        continue;
      }
      const r = this.entry.value.run({ value: v, issues: [] });
      p.issues.push(...prefix(k, r.issues));
      out[key.value as string] = r.value;
    }
    p.value = out;
    return p;
  }
}

type AnySchema = Schema<unknown, unknown>;
export type Shape = Record<string, AnySchema>;
type Flatten<T> = { [K in keyof T]: T[K] } & {};
type OptionalKeys<T> = { [K in keyof T]: undefined extends T[K] ? K : never }[keyof T];
type WithOptional<T> = Flatten<
  { [K in Exclude<keyof T, OptionalKeys<T>>]: T[K] } & { [K in OptionalKeys<T>]?: T[K] }
>;
type ShapeOutput<S extends Shape> = WithOptional<{ [K in keyof S]: S[K]["_output"] }>;
type ShapeInput<S extends Shape> = WithOptional<{ [K in keyof S]: S[K]["_input"] }>;

class ObjectSchema<S extends Shape> extends Schema<ShapeOutput<S>, ShapeInput<S>> {
  readonly shape: S;
  readonly strictKeys: boolean;
  constructor(shape: S, strictKeys: boolean = false) {
    super();
    this.shape = shape;
    this.strictKeys = strictKeys;
  }
  /** The same object schema (checks included), reporting unknown keys instead of dropping them. */
  strict(): this {
    const copy = this.copy();
    (copy as { strictKeys: boolean }).strictKeys = true;
    return copy;
  }
  protected parseType(p: Payload): Payload {
    const input = p.value;
    if (!isKeyed(input)) {
      p.issues.push(invalidType("object", input));
      return p;
    }
    const record = input as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(this.shape)) {
      const r = schema.run({ value: record[key], issues: [] });
      p.issues.push(...prefix(key, r.issues));
      if (r.value !== undefined) out[key] = r.value;
      else if (key in record) out[key] = undefined;
    }
    if (this.strictKeys) {
      const unknown = Object.keys(record).filter((k) => !Object.hasOwn(this.shape, k));
      if (unknown.length > 0)
        p.issues.push({
          code: "unrecognized_keys",
          path: [],
          keys: unknown,
          message: `Unrecognized key${unknown.length > 1 ? "s" : ""}: ${unknown.map((k) => JSON.stringify(k)).join(", ")}`,
        });
    }
    p.value = out;
    return p;
  }
}

class UnionSchema<T extends readonly AnySchema[]> extends Schema<T[number]["_output"], T[number]["_input"]> {
  readonly options: T;
  constructor(options: T) {
    super();
    this.options = options;
  }
  protected parseType(p: Payload): Payload {
    const results = this.options.map((o) => o.run({ value: p.value, issues: [] }));
    const ok = results.find((r) => r.issues.length === 0);
    if (ok) {
      p.value = ok.value;
      return p;
    }
    const going = results.filter((r) => !aborted(r));
    if (going.length === 1) {
      p.value = going[0]!.value;
      p.issues.push(...going[0]!.issues);
      return p;
    }
    p.issues.push({ code: "invalid_union", path: [], message: "Invalid input" });
    return p;
  }
}

class DiscriminatedUnionSchema<T extends readonly ObjectSchema<Shape>[]> extends Schema<
  T[number]["_output"],
  T[number]["_input"]
> {
  readonly key: string;
  readonly options: T;
  constructor(key: string, options: T) {
    super();
    this.key = key;
    this.options = options;
  }
  private tagOf(o: ObjectSchema<Shape>): unknown {
    const literal = o.shape[this.key];
    return literal instanceof ValuesSchema ? literal.values[0] : undefined;
  }
  protected parseType(p: Payload): Payload {
    const input = p.value;
    if (!isKeyed(input)) {
      p.issues.push(invalidType("object", input));
      return p;
    }
    const want = (input as Record<string, unknown>)[this.key];
    const option = this.options.find((o) => this.tagOf(o) === want);
    if (option) return option.run(p);
    const names = this.options.map((o) => `'${String(this.tagOf(o))}'`).join(" | ");
    p.issues.push({
      code: "invalid_union",
      path: [this.key],
      message: `Invalid discriminator value. Expected ${names}`,
    });
    return p;
  }
}

/** The constructors, named as zod names them. */
export const z = {
  string: () => new StringSchema(),
  number: (message?: Message) => new NumberSchema(false, messageOf(message)),
  boolean: () => new BooleanSchema(),
  literal: <const T extends string | number>(value: T) => new ValuesSchema<T>([value]),
  enum: <const T extends readonly string[]>(values: T, message?: Message) =>
    new ValuesSchema<T[number]>(values, messageOf(message)),
  array: <E extends AnySchema>(element: E) => new ArraySchema(element),
  object: <S extends Shape>(shape: S) => new ObjectSchema(shape),
  record: <K extends Schema<string, unknown>, V extends AnySchema>(key: K, value: V) =>
    new RecordSchema(key, value),
  union: <const T extends readonly AnySchema[]>(options: T) => new UnionSchema(options),
  discriminatedUnion: <const T extends readonly ObjectSchema<Shape>[]>(key: string, options: T) =>
    new DiscriminatedUnionSchema(key, options),
  instanceof: <T>(cls: abstract new (...args: never[]) => T) => new InstanceSchema(cls),
  coerce: {
    /** `Number(value)` first, then a number's checks. */
    number: <I = unknown>(message?: Message) => new NumberSchema<I>(true, messageOf(message)),
  },
  NEVER,
};
