import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { promisify } from "node:util";
import {
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  parseIdentities,
  parseRecipient,
} from "../../src/age/index.ts";
import { saveBackup } from "../../src/backup/save.ts";
import { type CatalogEntry, resolveBackup } from "../../src/catalog/catalog.ts";
import { EtcdSource } from "../../src/source/etcd.ts";
import type { DecryptionFactory } from "../../src/stages/encryption.ts";
import { LocalStore } from "../../src/store/local.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";

const run = promisify(execFile);

export interface TestBackup {
  store: LocalStore;
  entry: CatalogEntry;
  decrypt: DecryptionFactory;
}

/** Saves one age-encrypted, zstd-compressed backup of `etcd` into a local store at `dir`. */
export async function saveTestBackup(etcd: EtcdServer, dir: string, cluster = "test"): Promise<TestBackup> {
  const key = generateIdentity();
  const recipient = parseRecipient(key.recipient);
  const identities = parseIdentities(key.identity);
  await mkdir(dir, { recursive: true });
  const store = new LocalStore(dir);
  await saveBackup({
    source: new EtcdSource({ endpoints: [etcd.endpoint], tls: {}, dialTimeoutMs: 5000 }),
    store,
    cluster,
    compression: "zstd",
    encryption: {
      createStage: () => createEncryptStream([recipient]),
      recipients: [{ kind: "X25519", publicKey: key.recipient }],
    },
  });
  const entry = await resolveBackup(store, "latest");
  return { store, entry, decrypt: () => createDecryptStream(identities) };
}

/** What a member serves: its revision and every key (names only). */
export async function keysOf(ctlArgs: string[]): Promise<{ revision: number; keys: string[] }> {
  const { stdout } = await run(
    "/usr/bin/etcdctl",
    [...ctlArgs, "get", "", "--from-key", "--keys-only", "-w", "json"],
    {
      env: { ...process.env, ETCDCTL_API: "3" },
      maxBuffer: 1 << 28,
    },
  );
  const body = JSON.parse(stdout) as { header: { revision: number }; kvs?: { key: string }[] };
  return {
    revision: Number(body.header.revision),
    keys: (body.kvs ?? []).map((kv) => Buffer.from(kv.key, "base64").toString()).sort(),
  };
}

/** One member of a restored cluster, started as etcd's recovery guide does (the data dir holds the membership). */
export interface RestoredMember {
  name: string;
  endpoint: string;
  ctlArgs: string[];
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts etcd on a restored data dir with only the flags etcd's recovery guide gives at this step: name,
 * client URLs and the peer URL to listen on (the restored member already knows the initial cluster).
 * Does not wait for health: a member of a three-member cluster is healthy only once a quorum runs.
 */
export function startRestoredMember(opts: {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
}): RestoredMember {
  const endpoint = `http://127.0.0.1:${opts.clientPort}`;
  const proc = spawn(
    "/usr/bin/etcd",
    [
      ...["--name", opts.name, "--data-dir", opts.dataDir],
      ...["--listen-client-urls", endpoint, "--advertise-client-urls", endpoint],
      ...["--listen-peer-urls", `http://127.0.0.1:${opts.peerPort}`],
      ...["--log-level", "error", "--logger", "zap"],
    ],
    { stdio: ["ignore", "ignore", "ignore"] },
  );
  return {
    name: opts.name,
    endpoint,
    ctlArgs: [`--endpoints=${endpoint}`, "--dial-timeout=2s", "--command-timeout=10s"],
    process: proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
        setTimeout(() => proc.kill("SIGKILL"), 5000).unref();
      });
    },
  };
}

/** Waits until `etcdctl endpoint health` passes for the member, or throws after `timeoutMs`. */
export async function waitHealthy(member: RestoredMember, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await run("/usr/bin/etcdctl", [...member.ctlArgs, "endpoint", "health"], {
        env: { ...process.env, ETCDCTL_API: "3" },
      });
      return;
    } catch (err) {
      if (member.process.exitCode !== null)
        throw new Error(`${member.name} exited with ${member.process.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${member.name} not healthy: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}
