import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { UsageError } from "../errors.ts";
import type { DecryptionFactory } from "../restore/plain-stream.ts";
import { restoreToTalosNode } from "../restore/talos.ts";
import { TalosSource } from "../source/talos.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { readTalosBackupEnv, talosBackupStoreDestination } from "../talos/backup-env.ts";
import {
  findTalosconfig,
  loadTalosContext,
  SERVICE_ACCOUNT_DIR,
  type TalosContext,
  talosconfigCandidates,
} from "../talos/config.ts";
import { type S3OptionValues, s3SettingsFromOptions } from "./s3-options.ts";
import { formatBytes } from "./units.ts";

/** talosctl's connection flags. */
export interface TalosFlags {
  talosconfig?: string;
  context?: string;
  /** `-n, --nodes`, comma-separated. */
  nodes?: string;
  /** `-e` (short only where `--endpoints` belongs to etcd). */
  e?: string;
  /** `-e, --endpoints` where no etcd flag takes the name. */
  endpoints?: string;
}

/**
 * Adds talosctl's flags: `--talosconfig` (default `$TALOSCONFIG`, `~/.talos/config`, then a Talos ServiceAccount's
 * mounted config), `--context`, `-e` for endpoints (`-e, --endpoints` when `longEndpoints`; on `save` the long name
 * is etcd's and serves both sources) and, when `nodes`, `-n, --nodes`.
 */
export function addTalosOptions(cmd: Command, opts: { nodes: boolean; longEndpoints: boolean }): Command {
  cmd
    .addOption(
      new Option(
        "--talosconfig <file>",
        "Talos client config (default $TALOSCONFIG, ~/.talos/config, or a Talos ServiceAccount's)",
      ).helpGroup("Talos:"),
    )
    .addOption(
      new Option("--context <name>", "talosconfig context (default: its current one)").helpGroup("Talos:"),
    );
  cmd.addOption(
    new Option(
      opts.longEndpoints ? "-e, --endpoints <list>" : "-e <list>",
      "Talos API endpoints host[:50000], comma-separated, tried in turn (default: the context's)",
    ).helpGroup("Talos:"),
  );
  if (opts.nodes) {
    cmd.addOption(
      new Option("-n, --nodes <list>", "node(s) to snapshot through the endpoint, tried in turn").helpGroup(
        "Talos:",
      ),
    );
  }
  return cmd;
}

/** Splits a comma-separated flag value. */
export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** True when any talosctl flag was given on the command line. */
export function talosFlagsGiven(flags: TalosFlags): boolean {
  return Boolean(flags.talosconfig || flags.context || flags.nodes || flags.e);
}

/** Where a Talos connection comes from, resolved. */
export interface TalosConnection {
  context: TalosContext;
  endpoints: string[];
  nodes: string[];
}

/**
 * Reads the talosconfig the flags and environment point to and applies `-e`/`endpoints` and `-n` over the
 * context's endpoints and nodes, as talosctl does. Throws `Hinted` when no talosconfig can be found.
 */
export async function talosConnectionFromFlags(
  flags: TalosFlags,
  overrides: { endpoints?: string[]; nodes?: string[] } = {},
  env: Record<string, string | undefined> = process.env,
): Promise<TalosConnection> {
  const candidates = talosconfigCandidates(flags.talosconfig, env);
  const path = (await findTalosconfig(candidates)) ?? (flags.talosconfig ? flags.talosconfig : undefined);
  if (!path) {
    throw new UsageError(
      `no talosconfig found (looked at ${candidates.join(", ")})`,
      "pass --talosconfig FILE or set TALOSCONFIG; in a pod, mount a Talos ServiceAccount's secret at /var/run/secrets/talos.dev",
    );
  }
  const context = await loadTalosContext(path, flags.context);
  const endpointFlag = splitList(flags.e ?? flags.endpoints);
  const endpoints = overrides.endpoints?.length
    ? overrides.endpoints
    : endpointFlag.length
      ? endpointFlag
      : context.endpoints;
  const nodeFlag = splitList(flags.nodes);
  const nodes = overrides.nodes ?? (nodeFlag.length ? nodeFlag : context.nodes);
  return { context, endpoints, nodes };
}

export type SourceKind = "etcd" | "talos";

/**
 * Which source `save` reads from:
 * 1. `--source` (or ETCD_BACKUP_SOURCE) when given;
 * 2. talos when a talosctl flag was given (`--talosconfig`, `--context`, `-n`, `-e`);
 * 3. etcd when an etcd flag or ETCDCTL_* variable was given;
 * 4. talos when TALOSCONFIG is set, when a Talos ServiceAccount's config is mounted, or when talos-backup's
 *    environment (BUCKET) is present and a talosconfig exists: the drop-in case, no argument needed;
 * 5. etcd otherwise.
 */
export function chooseSource(input: {
  explicit: string | undefined;
  talosFlags: boolean;
  etcdGiven: boolean;
  env: Record<string, string | undefined>;
  talosconfigFound: boolean;
  serviceAccountDir?: string;
}): SourceKind {
  if (input.explicit) {
    if (input.explicit !== "etcd" && input.explicit !== "talos") {
      throw new UsageError(
        `unknown source ${JSON.stringify(input.explicit)}`,
        "use --source etcd or --source talos",
      );
    }
    return input.explicit;
  }
  if (input.talosFlags) return "talos";
  if (input.etcdGiven) return "etcd";
  if (input.env.TALOSCONFIG) return "talos";
  if (existsSync(join(input.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, "config"))) return "talos";
  if (input.env.BUCKET?.trim() && input.talosconfigFound) return "talos";
  return "etcd";
}

/** Adds `--source etcd|talos` (env ETCD_BACKUP_SOURCE). */
export function addSourceOption(cmd: Command): Command {
  return cmd.addOption(
    new Option("--source <kind>", "etcd or talos (default: talos when Talos flags or a talosconfig say so)")
      .choices(["etcd", "talos"])
      .env("ETCD_BACKUP_SOURCE"),
  );
}

/** The `save` flags the Talos source and talos-backup's environment look at or adjust. */
export interface SaveInputFlags extends TalosFlags {
  source?: string;
  endpoints?: string;
  cluster: string;
  compress: string;
  to?: string;
  recipient?: string[];
  encrypt: boolean;
  fromFile?: string;
}

/** What `save` reads from, and its flags with talos-backup's environment applied. */
export interface SaveInput<F extends SaveInputFlags> {
  flags: F;
  /** The Talos source, or undefined for the etcd (or file) source. */
  source: TalosSource | undefined;
  /** The store talos-backup's BUCKET/S3_PREFIX name, when `--to` was not given. */
  store: Store | undefined;
}

/**
 * Chooses the source (`chooseSource`) and applies talos-backup's environment (`readTalosBackupEnv`) where the
 * command line leaves a setting at its default, so that with exactly talos-backup's variables and no argument
 * `save` does what talos-backup does:
 * - cluster: `--cluster`/CLUSTER_NAME, else, with the Talos source, the talosconfig context's name;
 * - compression: `--compress`/ETCD_BACKUP_COMPRESS, else zstd when ENABLE_COMPRESSION=true, none when it is
 *   set otherwise or when BUCKET is set (talos-backup's default), else our default zstd;
 * - encryption: AGE_X25519_PUBLIC_KEY is one more recipient; DISABLE_ENCRYPTION=true means --no-encrypt;
 * - destination: `--to`/ETCD_BACKUP_TO, else `s3://BUCKET/<S3_PREFIX or cluster>` with the S3 settings of the
 *   environment (CUSTOM_S3_ENDPOINT, AWS_REGION, USE_PATH_STYLE...).
 */
export async function saveInputFromFlags<F extends SaveInputFlags>(
  cmd: Command,
  flags: F,
  env: Record<string, string | undefined> = process.env,
): Promise<SaveInput<F>> {
  const out: F = { ...flags };
  // An empty environment variable counts as unset, as talos-backup reads them.
  const given = (name: string) => {
    const src = cmd.getOptionValueSource(name);
    return src === "cli" || (src === "env" && cmd.getOptionValue(name) !== "");
  };
  const tb = readTalosBackupEnv(env);
  const talosconfigFound =
    (await findTalosconfig(talosconfigCandidates(flags.talosconfig, env))) !== undefined;
  const kind = flags.fromFile
    ? "etcd"
    : chooseSource({
        explicit: flags.source,
        talosFlags: talosFlagsGiven(flags),
        etcdGiven: ["endpoints", "cacert", "cert", "key", "user"].some(given),
        env,
        talosconfigFound,
      });

  let source: TalosSource | undefined;
  if (kind === "talos") {
    // On `save` the long --endpoints is etcd's flag; given on the command line it means the Talos endpoints.
    const longEndpoints = cmd.getOptionValueSource("endpoints") === "cli" ? splitList(flags.endpoints) : [];
    const conn = await talosConnectionFromFlags(
      { ...flags, endpoints: undefined },
      longEndpoints.length ? { endpoints: longEndpoints } : {},
      env,
    );
    source = new TalosSource({ context: conn.context, endpoints: conn.endpoints, nodes: conn.nodes });
    if (!given("cluster")) out.cluster = conn.context.name;
  }
  if (out.cluster === "") out.cluster = "etcd";
  if (!given("compress")) {
    if (tb.enableCompression !== undefined) out.compress = tb.enableCompression ? "zstd" : "none";
    else if (tb.present) out.compress = "none";
  }
  if (tb.disableEncryption) out.encrypt = false;
  else if (tb.ageRecipient) out.recipient = [...(flags.recipient ?? []), tb.ageRecipient];

  let store: Store | undefined;
  if (!flags.to && tb.present) {
    const dest = talosBackupStoreDestination(env, out.cluster);
    if (dest) store = openStore(dest, s3SettingsFromOptions(flags as S3OptionValues, env));
  }
  return { flags: out, source, store };
}

/** `restore --talos-node` flags. */
export interface TalosRestoreFlags extends TalosFlags {
  talosNode: string;
  dryRun?: boolean;
  skipHashCheck?: boolean;
}

/**
 * Runs `restore BACKUP --talos-node N` (see `restoreToTalosNode`) and returns the line to print: what was
 * checked, what was sent, and what to watch next.
 */
export async function restoreToTalosFromFlags(
  flags: TalosRestoreFlags,
  options: {
    store: Store;
    entry: CatalogEntry;
    decrypt: DecryptionFactory | undefined;
    signal: AbortSignal;
    onProgress: (storedBytes: number) => void;
  },
): Promise<string> {
  const conn = await talosConnectionFromFlags(flags, { nodes: [] });
  const node = flags.talosNode;
  const result = await restoreToTalosNode({
    context: conn.context,
    endpoints: conn.endpoints,
    store: options.store,
    entry: options.entry,
    node,
    ...(options.decrypt ? { decrypt: options.decrypt } : {}),
    skipHashCheck: flags.skipHashCheck ?? false,
    dryRun: flags.dryRun ?? false,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const checked = `sha256 trailer ok${options.entry.manifest ? ", manifest sha256 ok" : ""}`;
  if (result.dryRun) {
    return `dry run: etcd on node ${node} is ${result.etcdState} (ready for recovery); ${options.entry.key} reads back as ${formatBytes(result.dbSize + 32)} (${checked}); nothing was uploaded\n`;
  }
  return (
    `recovered etcd on node ${node} from ${options.entry.key}: uploaded ${formatBytes(result.uploaded)} (${checked}) and bootstrapped with recover_etcd` +
    `; watch \`talosctl -n ${node} service etcd\` until Running, then \`talosctl -n ${node} etcd members\`\n`
  );
}
