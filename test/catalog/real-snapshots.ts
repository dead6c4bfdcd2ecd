import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fillKeys, startEtcd } from "../fixtures/etcd-server.ts";

export interface RealSnapshot {
  bytes: Buffer;
  revision: number;
}

/**
 * Two snapshots of a real etcd, as `etcdctl snapshot save` writes them (trailer included), at two revisions, so
 * a test can tell which one a restore returned. The etcd is stopped and removed before this returns.
 */
export async function twoRealSnapshots(workDir: string): Promise<[RealSnapshot, RealSnapshot]> {
  const etcd = await startEtcd();
  try {
    const take = async (name: string): Promise<RealSnapshot> => {
      const file = join(workDir, name);
      await etcd.ctl(["snapshot", "save", file]);
      const status = JSON.parse(
        execFileSync("/usr/bin/etcdctl", ["snapshot", "status", "-w", "json", file], {
          env: { ...process.env, ETCDCTL_API: "3" },
        }).toString(),
      ) as { revision: number };
      return { bytes: await readFile(file), revision: status.revision };
    };
    await fillKeys(etcd, 200, { prefix: "/registry/configmaps/default/a-" });
    const a = await take("a.db");
    await fillKeys(etcd, 200, { prefix: "/registry/configmaps/default/b-" });
    const b = await take("b.db");
    return [a, b];
  } finally {
    await etcd.destroy();
  }
}
