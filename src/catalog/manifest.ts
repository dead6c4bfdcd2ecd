import { type Infer, z } from "../validation.ts";

/** The manifest format this version writes. Readers refuse newer majors instead of misreading them. */
export const MANIFEST_FORMAT = 1;

const sizeSchema = z.number().int().nonnegative();

/** A manifest (src/validation.ts: cheap to load, so it needs no lazy loading). */
const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  kind: z.enum(["snapshot", "config"]).default("snapshot"),
  cluster: z.string(),
  /** When the backup started, RFC 3339 UTC. */
  created: z.string().datetime({ offset: true }),
  /** How long the backup took, seconds. */
  durationSeconds: z.number().nonnegative(),
  source: z.object({
    kind: z.string(),
    endpoint: z.string(),
    member: z.string().optional(),
    node: z.string().optional(),
    etcdVersion: z.string().optional(),
  }),
  /**
   * etcd's revision and hash of the snapshot, computed while streaming, as `etcdutl snapshot status` gives them.
   * `totalKey` counts every key of every bucket, as etcdutl 3.5 and etcdctl 3.4 do; etcdutl 3.6 (and our
   * `status` of a 3.6 database) counts fewer, so the two may differ for the same snapshot.
   */
  etcd: z
    .object({
      revision: z.number().int().nonnegative(),
      hash: z.number().int().nonnegative().optional(),
      totalKey: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** Bytes of the bbolt database (the snapshot without its 32-byte trailer). */
  dbSize: sizeSchema,
  /** sha256 of the plain snapshot file as restored (database and trailer), hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizes: z.object({ plain: sizeSchema, compressed: sizeSchema, stored: sizeSchema }),
  compression: z.object({ kind: z.enum(["zstd", "none"]), level: z.number().int().optional() }),
  encryption: z.object({
    kind: z.enum(["age", "none"]),
    /** Public information only: recipient kinds and X25519 public keys. */
    recipients: z.array(z.object({ kind: z.string(), publicKey: z.string().optional() })),
  }),
  tool: z.object({ name: z.literal("etcd-backup"), version: z.string() }),
  /**
   * The id of the run that wrote this backup (random, unique per save): the one in the `.pending` claim and, on
   * S3, in the object's metadata. Absent in manifests written before names were claimed.
   */
  run: z
    .string()
    .regex(/^[0-9a-f]{16,64}$/)
    .optional(),
  /** The stored object exactly as written (after compression and encryption): what readers check it against. */
  object: z.object({ size: sizeSchema, sha256: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  /** Config archives only: what the tar holds. */
  config: z
    .object({
      files: sizeSchema,
      directories: sizeSchema,
      symlinks: sizeSchema,
      bytes: sizeSchema,
      paths: z.array(z.string()),
    })
    .optional(),
});

export type Manifest = Infer<typeof manifestSchema>;

/**
 * Parses and validates a manifest. A manifest from a newer, unknown format is reported as such rather than
 * half-read; anything else malformed names the offending field.
 */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`manifest is not JSON: ${(err as Error).message}`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (typeof format === "number" && format > MANIFEST_FORMAT) {
    throw new Error(
      `manifest format ${format} is newer than this tool understands (${MANIFEST_FORMAT}); upgrade etcd-backup`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`manifest is invalid: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return parsed.data;
}

export function serializeManifest(m: Manifest): string {
  return `${JSON.stringify(manifestSchema.parse(m), null, 2)}\n`;
}
