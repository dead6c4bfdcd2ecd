import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore } from "../../src/store/local.ts";
import { runStoreConformance } from "./conformance.ts";

runStoreConformance("local directory", async () => {
  const dir = await mkdtemp(join(tmpdir(), "etcd-backup-local-store-"));
  return { store: new LocalStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
