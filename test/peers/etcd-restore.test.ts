import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { DEFAULT_REVISION_BUMP, restoreToDataDir } from "../../src/restore/data-dir.ts";
import { findRestoreTool } from "../../src/restore/etcd-tools.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";
import { type EtcdPeer, etcdPeer, skipReason } from "../fixtures/peers.ts";
import { freePort } from "../fixtures/ports.ts";
import {
  type RestoredMember,
  saveTestBackup,
  startRestoredMember,
  type TestBackup,
  waitHealthy,
} from "../restore/helpers.ts";

const run = promisify(execFile);

/**
 * `restore --data-dir` driving the real etcdutl of etcd 3.6 and 3.5 (no stand-in): the revision is bumped
 * and marked compacted, and members of that release serve every key, with its value, at the bumped
 * revision; a three-member cluster of each release restored from one backup is one healthy cluster.
 *
 * Behaviour found (etcdutl 3.6.16 and 3.5.35 alike): after `--bump-revision N --mark-compacted`, a read at
 * any revision up to the bumped one answers "required revision has been compacted", and the first write
 * gets revision backup+N+1; etcdutl 3.5.35 lists both flags in its help (backported), like 3.6.
 */

interface Served {
  revision: number;
  kvs: Map<string, string>;
}

async function served(peer: EtcdPeer, ctlArgs: string[]): Promise<Served> {
  const { stdout } = await run(peer.etcdctl, [...ctlArgs, "get", "", "--from-key", "-w", "json"], {
    env: peer.ctlEnv,
    maxBuffer: 1 << 28,
  });
  const body = JSON.parse(stdout) as { header: { revision: number }; kvs?: { key: string; value: string }[] };
  const kvs = new Map<string, string>();
  for (const kv of body.kvs ?? [])
    kvs.set(Buffer.from(kv.key, "base64").toString(), Buffer.from(kv.value ?? "", "base64").toString());
  return { revision: Number(body.header.revision), kvs };
}

for (const release of ["3.6", "3.5"] as const) {
  const peer = etcdPeer(release);
  describe(`restore --data-dir with the real etcdutl ${release}`, {
    skip: skipReason(peer, `etcd ${release}`),
  }, () => {
    let work: string;
    let etcd: EtcdServer;
    let backup: TestBackup;
    let original: Served;

    before(async () => {
      work = await mkdtemp(join(tmpdir(), `etcd-backup-peer-restore-${release}-`));
      etcd = await startEtcd({ release });
      await fillKeys(etcd, 3000, { prefix: "/registry/configmaps/default/cm-" });
      await etcd.ctl(["put", "/registry/secrets/kube-system/s1", "secret value"]);
      await etcd.ctl(["del", "/registry/configmaps/default/cm-000042"]);
      original = await served(peer!, etcd.ctlArgs);
      backup = await saveTestBackup(etcd, join(work, "store"));
      await etcd.destroy();
    });
    after(async () => {
      await etcd?.destroy();
      if (work) await rm(work, { recursive: true, force: true });
    });

    test("one member: bumped and compacted revision, every key and value", async () => {
      const tool = await findRestoreTool({ preferred: peer!.etcdutl! });
      assert.deepEqual({ kind: tool.kind, bump: tool.supportsRevisionBump }, { kind: "etcdutl", bump: true });
      const dataDir = join(work, "solo.etcd");
      const peerPort = await freePort();
      const warnings: string[] = [];
      const result = await restoreToDataDir({
        ...backup,
        dataDir,
        tool,
        member: {
          name: "solo",
          initialCluster: `solo=http://127.0.0.1:${peerPort}`,
          initialAdvertisePeerUrls: `http://127.0.0.1:${peerPort}`,
        },
        onWarning: (w) => warnings.push(w),
      });
      assert.equal(result.revisionBump, DEFAULT_REVISION_BUMP);
      assert.deepEqual(warnings, []);
      const member = startRestoredMember({
        name: "solo",
        dataDir,
        clientPort: await freePort(),
        peerPort,
        peer,
      });
      try {
        await waitHealthy(member);
        const now = await served(peer!, member.ctlArgs);
        assert.equal(now.revision, original.revision + DEFAULT_REVISION_BUMP);
        assert.deepEqual(now.kvs, original.kvs);
        // Marked compacted: history before the bump is gone, so watchers must re-list.
        await assert.rejects(
          run(
            peer!.etcdctl,
            [...member.ctlArgs, "get", "/registry/secrets/kube-system/s1", `--rev=${original.revision}`],
            {
              env: peer!.ctlEnv,
            },
          ),
          /required revision has been compacted/,
        );
        await run(peer!.etcdctl, [...member.ctlArgs, "put", "/after", "x"], { env: peer!.ctlEnv });
        assert.equal(
          (await served(peer!, member.ctlArgs)).revision,
          original.revision + DEFAULT_REVISION_BUMP + 1,
        );
      } finally {
        await member.stop();
      }
    });

    test("three members restored from one backup: one healthy cluster serving every key", async () => {
      const tool = await findRestoreTool({ preferred: peer!.etcdutl! });
      const names = ["m1", "m2", "m3"];
      const peers = await Promise.all(names.map(() => freePort()));
      const clients = await Promise.all(names.map(() => freePort()));
      const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peers[i]}`).join(",");
      for (const [i, name] of names.entries()) {
        await restoreToDataDir({
          ...backup,
          dataDir: join(work, "three", `${name}.etcd`),
          tool,
          member: {
            name,
            initialCluster,
            initialClusterToken: `restored-${release}`,
            initialAdvertisePeerUrls: `http://127.0.0.1:${peers[i]}`,
          },
        });
      }
      const members: RestoredMember[] = names.map((name, i) =>
        startRestoredMember({
          name,
          dataDir: join(work, "three", `${name}.etcd`),
          clientPort: clients[i]!,
          peerPort: peers[i]!,
          peer,
        }),
      );
      try {
        await Promise.all(members.map((m) => waitHealthy(m, 60_000)));
        for (const m of members) {
          const now = await served(peer!, m.ctlArgs);
          assert.equal(now.revision, original.revision + DEFAULT_REVISION_BUMP, `${m.name} revision`);
          assert.deepEqual(now.kvs, original.kvs, `${m.name} serves every key`);
        }
        const { stdout } = await run(
          peer!.etcdctl,
          [`--endpoints=${members.map((m) => m.endpoint).join(",")}`, "endpoint", "status", "-w", "json"],
          { env: peer!.ctlEnv },
        );
        const status = JSON.parse(stdout) as { Status: { leader: string; header: { cluster_id: string } } }[];
        assert.equal(new Set(status.map((s) => String(s.Status.header.cluster_id))).size, 1, "one cluster");
        assert.equal(new Set(status.map((s) => String(s.Status.leader))).size, 1, "one leader");
      } finally {
        await Promise.all(members.map((m) => m.stop()));
      }
    });
  });
}
