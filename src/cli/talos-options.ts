import { type Command, Option } from "commander";
import type { CatalogEntry } from "../catalog/catalog.ts";
import { UsageError } from "../errors.ts";
import { formatBytes } from "../render/units.ts";
import { restoreToTalosNode } from "../restore/talos.ts";
import type { DecryptionFactory } from "../stages/encryption.ts";
import type { Store } from "../store/store.ts";
import {
  findTalosconfig,
  loadTalosContext,
  type TalosContext,
  talosconfigCandidates,
} from "../talos/config.ts";

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

/** Adds `--source etcd|talos` (env ETCD_BACKUP_SOURCE). */
export function addSourceOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      "--source <kind>",
      "etcd, talos or kubernetes (default: kubernetes with --kubeconfig, talos when Talos flags or a talosconfig say so)",
    )
      .choices(["etcd", "talos", "kubernetes"])
      .env("ETCD_BACKUP_SOURCE"),
  );
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
  const trailer = result.hasTrailer
    ? "sha256 trailer ok"
    : "no sha256 trailer to check (etcd's hash check skipped)";
  const checked = `${trailer}${options.entry.manifest ? ", manifest sha256 ok" : ""}`;
  if (result.dryRun) {
    return `dry run: etcd on node ${node} is ${result.etcdState} (ready for recovery); ${options.entry.key} reads back as ${formatBytes(result.dbSize + 32)} (${checked}); nothing was uploaded\n`;
  }
  return (
    `recovered etcd on node ${node} from ${options.entry.key}: uploaded ${formatBytes(result.uploaded)} (${checked}) and bootstrapped with recover_etcd` +
    `; watch \`talosctl -n ${node} service etcd\` until Running, then \`talosctl -n ${node} etcd members\`\n`
  );
}
