import { type Command, Option } from "commander";
import { durationSetting } from "../duration.ts";
import { UsageError } from "../errors.ts";
import { EtcdSource } from "../source/etcd.ts";

/** etcdctl's connection flags, with etcdctl's names and ETCDCTL_* environment variables. */
export function addEtcdOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--endpoints <list>", "etcd endpoints, comma-separated, tried in turn")
        .env("ETCDCTL_ENDPOINTS")
        .default("127.0.0.1:2379"),
    )
    .addOption(new Option("--cacert <file>", "CA bundle to verify etcd's certificate").env("ETCDCTL_CACERT"))
    .addOption(new Option("--cert <file>", "client certificate for mTLS").env("ETCDCTL_CERT"))
    .addOption(new Option("--key <file>", "client key for mTLS").env("ETCDCTL_KEY"))
    .addOption(
      new Option("--insecure-skip-tls-verify", "do not verify etcd's certificate (prints a warning)").env(
        "ETCDCTL_INSECURE_SKIP_TLS_VERIFY",
      ),
    )
    .addOption(
      new Option(
        "--dial-timeout <duration>",
        "time to connect to one endpoint (5s, 500ms; a bare number is seconds)",
      )
        .env("ETCDCTL_DIAL_TIMEOUT")
        .default("5s"),
    )
    .addOption(
      new Option("--user <name[:password]>", "etcd user when etcd has authentication enabled").env(
        "ETCDCTL_USER",
      ),
    )
    .addOption(
      new Option("--password <password>", "etcd password (or after ':' in --user)").env("ETCDCTL_PASSWORD"),
    );
}

export interface EtcdFlags {
  endpoints: string;
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipTlsVerify?: boolean | string;
  dialTimeout: string;
  user?: string;
  password?: string;
}

/** Builds the etcd source from the flags; warns on stderr when TLS verification is off. */
export function etcdSourceFromFlags(flags: EtcdFlags, warn: (line: string) => void): EtcdSource {
  const endpoints = flags.endpoints
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0)
    throw new UsageError("--endpoints is empty", "pass --endpoints host:2379[,host2:2379]");
  const dialTimeoutMs = durationSetting("--dial-timeout", flags.dialTimeout);
  const insecure = flags.insecureSkipTlsVerify === true || flags.insecureSkipTlsVerify === "true";
  if (insecure)
    warn(
      "warning: --insecure-skip-tls-verify: etcd's certificate is not verified; anyone on the path can read the snapshot",
    );
  let user: { name: string; password: string } | undefined;
  if (flags.user) {
    const i = flags.user.indexOf(":");
    const name = i >= 0 ? flags.user.slice(0, i) : flags.user;
    const password = i >= 0 ? flags.user.slice(i + 1) : (flags.password ?? "");
    user = { name, password };
  }
  return new EtcdSource({
    endpoints,
    tls: { caFile: flags.cacert, certFile: flags.cert, keyFile: flags.key, insecureSkipVerify: insecure },
    dialTimeoutMs,
    ...(user ? { user } : {}),
  });
}
