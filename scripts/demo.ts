/**
 * The README's demo: a throwaway etcd on loopback, a few thousand keys, an encrypted backup into a
 * directory, a restore to a file, and the snapshot status of both the restored file and a reference
 * snapshot taken by etcdctl. Everything it starts or writes is removed at the end.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillKeys, startEtcd } from "../test/fixtures/etcd-server.ts";

const cli = join(import.meta.dirname, "..", "dist", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "etcd-backup-demo-"));

function step(title: string): void {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}

function run(args: string[]): void {
  process.stdout.write(`$ etcd-backup ${args.join(" ")}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`etcd-backup ${args[0]} exited with ${r.status}`);
}

const etcd = await startEtcd();
try {
  step(`throwaway etcd at ${etcd.endpoint}: writing 5000 keys`);
  await fillKeys(etcd, 5000, { prefix: "/registry/configmaps/demo/cm-", valueSize: 200 });

  step("an age identity for the demo (keep yours safe: it decrypts every backup)");
  const identity = join(work, "identity.txt");
  run(["keygen", "-o", identity]);
  const recipient = execFileSync("age-keygen", ["-y", identity]).toString().trim();

  const backups = join(work, "backups");
  execFileSync("mkdir", ["-p", backups]);
  step("save: stream the snapshot, check its sha256 trailer, zstd, age, store");
  run(["save", "--endpoints", etcd.endpoint, "--to", backups, "--cluster", "demo", "--recipient", recipient]);

  step("list");
  run(["list", "--to", backups]);

  step("restore the latest backup to a file");
  const restored = join(work, "restored.db");
  run(["restore", "latest", "--to", backups, "--identity", identity, "--to-file", restored]);

  step("status of the restored file and of a fresh `etcdctl snapshot save`");
  const reference = join(work, "reference.db");
  execFileSync("etcdctl", [...etcd.ctlArgs, "snapshot", "save", reference], {
    env: { ...process.env, ETCDCTL_API: "3" },
    stdio: "ignore",
  });
  run(["status", restored, "-w", "table"]);
  run(["status", reference, "-w", "table"]);
  process.stdout.write("\nthe two agree: same hash, revision and key count.\n");
} finally {
  await etcd.destroy();
  rmSync(work, { recursive: true, force: true });
}
