import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { findTalosconfig, SERVICE_ACCOUNT_DIR, talosconfigCandidates } from "../talos/config.ts";
import { readTalosBackupEnv } from "./talos-backup.ts";

/*
 * What a front end's flat settings (flags, environment, a settings file; keys named after the flags in
 * camelCase) leave to be decided before validation, decided the same way for every front end: which source to
 * read from. talos-backup's switches are applied by the parsers (schema.ts), its destination and cluster name
 * when the job is built (job.ts).
 */

export type SourceKind = "etcd" | "talos" | "kubernetes";

/**
 * Which source a job reads from:
 * 1. `--source` (or ETCD_BACKUP_SOURCE) when given;
 * 2. kubernetes when `--kubeconfig` was given (KUBECONFIG alone does not choose it: it is set in many shells
 *    that back up etcd directly; `--source kubernetes` uses it);
 * 3. talos when a talosctl setting was given (`--talosconfig`, `--context`, `-n`, `-e`);
 * 4. etcd when an etcd setting or ETCDCTL_* variable was given;
 * 5. talos when TALOSCONFIG is set, when a Talos ServiceAccount's config is mounted, or when talos-backup's
 *    environment (BUCKET) is present and a talosconfig exists: the drop-in case, no argument needed;
 * 6. etcd otherwise.
 */
export function chooseSource(input: {
  explicit: string | undefined;
  kubeconfigGiven?: boolean;
  talosFlags: boolean;
  etcdGiven: boolean;
  env: Record<string, string | undefined>;
  talosconfigFound: boolean;
  serviceAccountDir?: string;
}): SourceKind {
  if (input.explicit) {
    if (input.explicit !== "etcd" && input.explicit !== "talos" && input.explicit !== "kubernetes") {
      throw new UsageError(
        `unknown source ${JSON.stringify(input.explicit)}`,
        "use --source etcd, --source talos or --source kubernetes",
      );
    }
    return input.explicit;
  }
  if (input.kubeconfigGiven) return "kubernetes";
  if (input.talosFlags) return "talos";
  if (input.etcdGiven) return "etcd";
  if (input.env.TALOSCONFIG) return "talos";
  if (existsSync(join(input.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, "config"))) return "talos";
  if (readTalosBackupEnv(input.env).present && input.talosconfigFound) return "talos";
  return "etcd";
}

/** Settings that name the etcd source; given, they choose it. */
const ETCD_SETTINGS = ["endpoints", "cacert", "cert", "key", "user"];
/** Settings that name the Talos source; given, they choose it. */
const TALOS_SETTINGS = ["talosconfig", "context", "nodes", "talosEndpoints"];

/**
 * Completes flat settings before they are parsed: chooses the source (see chooseSource) unless `--source` or
 * `--from-file` was given. `given` tells which settings the user gave (flags, environment, file), as opposed to
 * defaults. With the Talos source, etcd's `--endpoints` given on the command line means the Talos endpoints
 * when `-e` was not given: on `save` and `daemon` the long name belongs to etcd and serves both sources.
 * Returns new settings.
 */
export async function completeSettings(
  settings: Record<string, unknown>,
  given: (name: string) => boolean,
  env: Record<string, string | undefined> = process.env,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...settings };
  if (out.fromFile !== undefined) return out;
  if (out.source === undefined || out.source === "") {
    const talosconfig = typeof out.talosconfig === "string" ? out.talosconfig : undefined;
    const talosconfigFound =
      readTalosBackupEnv(env).present &&
      (await findTalosconfig(talosconfigCandidates(talosconfig, env))) !== undefined;
    out.source = chooseSource({
      explicit: undefined,
      kubeconfigGiven: given("kubeconfig"),
      talosFlags: TALOS_SETTINGS.some(given),
      etcdGiven: ETCD_SETTINGS.some(given),
      env,
      talosconfigFound,
    });
  } else {
    chooseSource({
      explicit: String(out.source),
      talosFlags: false,
      etcdGiven: false,
      env,
      talosconfigFound: false,
    });
  }
  if (out.source === "talos" && given("endpoints") && !given("talosEndpoints")) {
    out.talosEndpoints = out.endpoints;
  }
  if (out.source === "talos") delete out.endpoints;
  // The kubeconfig source finds etcd's URL in its pod; `--context` is the kubeconfig's.
  if (out.source === "kubernetes") delete out.endpoints;
  return out;
}
