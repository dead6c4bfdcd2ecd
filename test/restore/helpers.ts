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
import { findRestoreTool, type RestoreTool } from "../../src/restore/etcd-tools.ts";
import { EtcdSource } from "../../src/source/etcd.ts";
import type { DecryptionFactory } from "../../src/stages/encryption.ts";
import { LocalStore } from "../../src/store/local.ts";
import type { EtcdServer } from "../fixtures/etcd-server.ts";
import { defaultEtcdRelease, type EtcdPeer, etcdPeer } from "../fixtures/peers.ts";

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

/** The etcd the restore tests run members of when they name none: 3.6 when built, else Debian's 3.4. */
function defaultPeer(): EtcdPeer {
  const release = defaultEtcdRelease();
  const peer = etcdPeer(release);
  if (!peer) throw new Error(`etcd ${release} is not installed`);
  return peer;
}

/**
 * The restore tool of the release the members run (etcdutl, or etcdctl for 3.4). etcd supports restoring
 * with the tool of its own release: etcd 3.6.16 panics ("failed to update; member unknown") on a data dir
 * that etcdctl 3.4's `snapshot restore` made.
 */
export async function defaultRestoreTool(peer: EtcdPeer = defaultPeer()): Promise<RestoreTool> {
  return await findRestoreTool({ preferred: peer.etcdutl ?? peer.etcdctl });
}

/** What a member serves: its revision and every key (names only), read with `peer`'s etcdctl. */
export async function keysOf(
  ctlArgs: string[],
  peer: EtcdPeer = defaultPeer(),
): Promise<{ revision: number; keys: string[] }> {
  const { stdout } = await run(
    peer.etcdctl,
    [...ctlArgs, "get", "", "--from-key", "--keys-only", "-w", "json"],
    {
      env: peer.ctlEnv,
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
  /** The etcd release the member runs (its etcdctl reaches it). */
  peer: EtcdPeer;
  endpoint: string;
  ctlArgs: string[];
  process: ChildProcess;
  /** The last few KiB etcd wrote on stderr (why it exited, when it did). */
  stderrTail(): string;
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
  /** The etcd to run; default 3.6 when built, else Debian's 3.4. */
  peer?: EtcdPeer;
}): RestoredMember {
  const peer = opts.peer ?? defaultPeer();
  const endpoint = `http://127.0.0.1:${opts.clientPort}`;
  const proc = spawn(
    peer.etcd,
    [
      ...["--name", opts.name, "--data-dir", opts.dataDir],
      ...["--listen-client-urls", endpoint, "--advertise-client-urls", endpoint],
      ...["--listen-peer-urls", `http://127.0.0.1:${opts.peerPort}`],
      ...["--log-level", "error", "--logger", "zap"],
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return {
    name: opts.name,
    peer,
    endpoint,
    ctlArgs: [`--endpoints=${endpoint}`, "--dial-timeout=2s", "--command-timeout=10s"],
    process: proc,
    stderrTail: () => stderr,
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
      await run(member.peer.etcdctl, [...member.ctlArgs, "endpoint", "health"], { env: member.peer.ctlEnv });
      return;
    } catch (err) {
      if (member.process.exitCode !== null)
        throw new Error(
          `${member.name} exited with ${member.process.exitCode}: ${member.stderrTail().slice(-1500)}`,
        );
      if (Date.now() > deadline) throw new Error(`${member.name} not healthy: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}
