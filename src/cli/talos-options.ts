import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import {
  findTalosconfig,
  loadTalosContext,
  SERVICE_ACCOUNT_DIR,
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
