/**
 * The built CLI's `rekey` of backups held by Azure version-level immutability. Azurite has no such policies, so
 * the service is the Blob STAND-IN (test/fixtures/azure-blob-standin.ts), which answers as the REST pages
 * document and keeps every version. A real save puts a backup there, an administrator's policy (or legal hold) is
 * set on its object and manifest, then `rekey` runs:
 * - it succeeds and says once that the previous version stays under its lock;
 * - the new current versions of the object and the manifest carry the old policy (mode and date) and hold, in
 *   the request that wrote them;
 * - the old version stays, still held, and the real `age -d` opens it with the old key only; the current one
 *   opens with the new key only;
 * - no staging blob or journal is left, in any version; `list` shows the backup once, with its lock; restore
 *   with the new key gives the snapshot back; prune (with a newer backup beside it) keeps it and says why, and
 *   sends no Delete Blob for it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { manifestKey } from "../../src/catalog/names.ts";
import { AzureBlobStore } from "../../src/store/azure-blob.ts";
import type { Retention } from "../../src/store/store.ts";
import { type AzureBlobStandin, startAzureBlobStandin } from "../fixtures/azure-blob-standin.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { REPO_ROOT } from "../fixtures/peers.ts";
import { prepareRekey, type RekeySetup } from "../fixtures/rekey-setup.ts";

const AGE = join(REPO_ROOT, ".peers", "age-1.3.2", "bin", "age");
const CONTAINER = "locked";
const PREFIX = "prod";
/** The stand-in does not check signatures; any base64 key will do. Not a secret. */
const KEY = Buffer.from("stand-in key, not checked").toString("base64");
const DAY = 86_400_000;
const exec = promisify(execFile);

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("rekey under Azure version-level immutability (Blob service STAND-IN)", {
  skip: existsSync(AGE) ? false : "age 1.3.2 not built in .peers",
}, () => {
  let setup: RekeySetup;
  let standin: AzureBlobStandin;
  let env: NodeJS.ProcessEnv;
  let store: AzureBlobStore;

  before(async () => {
    // About 2.5 MB stored (--compress none): several 1 MiB blocks, so the copy is a staged upload.
    setup = await prepareRekey("e2e-rekey-azure-lock", 600);
    standin = await startAzureBlobStandin();
    standin.createContainer(CONTAINER, { versionLevelImmutability: true });
    env = {
      AZURE_STORAGE_ACCOUNT: standin.account,
      AZURE_STORAGE_KEY: KEY,
      ETCD_BACKUP_AZURE_ENDPOINT: standin.endpoint,
      ETCD_BACKUP_AZURE_BLOCK_SIZE: "1",
    };
    store = new AzureBlobStore({
      container: CONTAINER,
      prefix: PREFIX,
      settings: { endpoint: standin.endpoint, retryBaseDelayMs: 5 },
      secrets: { accountKey: KEY },
    });
  });
  after(async () => {
    await standin?.close();
    if (setup) rmSync(setup.work, { recursive: true, force: true });
  });

  const ageDecrypts = async (identity: string, data: Buffer, file: string) => {
    writeFileSync(file, data);
    try {
      const out = await exec(AGE, ["-d", "-i", identity, file], { encoding: "buffer", maxBuffer: 1 << 28 });
      return out.stdout as Buffer;
    } catch {
      return null;
    }
  };

  const cases: {
    label: string;
    lock: { until?: Date; mode?: "unlocked" | "locked"; legalHold?: boolean };
    expect: Retention;
  }[] = [
    {
      label: "a locked policy (compliance)",
      lock: { until: new Date(Math.ceil((Date.now() + 2 * DAY) / 1000) * 1000), mode: "locked" },
      expect: { mode: "compliance", legalHold: false },
    },
    {
      label: "an unlocked policy and a legal hold (governance)",
      lock: {
        until: new Date(Math.ceil((Date.now() + 3 * DAY) / 1000) * 1000),
        mode: "unlocked",
        legalHold: true,
      },
      expect: { mode: "governance", legalHold: true },
    },
    { label: "a legal hold alone", lock: { legalHold: true }, expect: { legalHold: true } },
  ];
  for (const [i, c] of cases.entries()) {
    test(`${c.label}: the rekeyed backup stays held, the old version stays readable by the old key only`, async () => {
      const to = `azblob://${CONTAINER}/${PREFIX}`;
      const { work, snapshot, a, b } = setup;
      const name = await setup.saveToOldKey(to, `lock${i}`, { env });
      for (const key of [name, manifestKey(name)]) standin.setPolicy(CONTAINER, `${PREFIX}/${key}`, c.lock);
      const old = await store.retention(name);
      assert.equal(old.mode, c.expect.mode);
      assert.equal(old.legalHold, c.expect.legalHold);
      assert.equal(old.retainUntil?.getTime(), c.lock.until?.getTime());

      const rekey = await runCli(setup.rekeyArgs(name, to), { env });
      assertOk(rekey);
      const said = `${rekey.stdout}${rekey.stderr}`;
      assert.equal(said.match(/previous version/g)?.length, 1, `rekey said:\n${said}`);
      assert.match(said, /readable by the old key/);
      if (c.expect.mode) assert.match(said, new RegExp(`${c.expect.mode} until`));
      else assert.match(said, /until the legal hold is lifted/);
      assert.doesNotMatch(said, /fail|error/i);

      // The new current versions carry the old policy and hold; the request that wrote them did.
      for (const key of [name, manifestKey(name)]) {
        assert.deepEqual(await store.retention(key), old, key);
        const versions = standin.versions(CONTAINER, `${PREFIX}/${key}`);
        assert.equal(versions.length, 2, `${key}: one old and one new version`);
        const [before, current] = versions;
        assert.ok(before && current && !before.current && current.current);
        for (const v of [before, current]) {
          assert.equal(v.policy?.mode, c.lock.mode, key);
          assert.equal(v.policy?.until.getTime(), c.lock.until?.getTime(), key);
          assert.equal(v.legalHold, c.lock.legalHold === true, key);
        }
      }
      const objectWrites = standin.requests.filter(
        (r) => r.method === "PUT" && r.blob === `${PREFIX}/${name}` && r.query.comp !== "block",
      );
      const lastWrite = objectWrites.at(-1);
      assert.ok(lastWrite);
      assert.equal(lastWrite.headers["x-ms-legal-hold"], c.lock.legalHold ? "true" : undefined);
      assert.equal(
        lastWrite.headers["x-ms-immutability-policy-mode"],
        c.expect.mode === "compliance" ? "Locked" : c.expect.mode === "governance" ? "Unlocked" : undefined,
      );

      // No staging blob or journal, in any version.
      for (const r of standin.requests) {
        if (r.blob.includes(".rekey"))
          assert.equal(standin.versions(CONTAINER, r.blob).length, 0, `${r.blob} left behind`);
      }

      // The old version opens with the old key only, the current one with the new key only (the real age).
      const [oldVersion, currentVersion] = standin.versions(CONTAINER, `${PREFIX}/${name}`);
      assert.ok(oldVersion && currentVersion);
      const snapshotSha = sha256(readFileSync(snapshot));
      const oldFile = join(work, `old-${i}.age`);
      const currentFile = join(work, `current-${i}.age`);
      const oldPlain = await ageDecrypts(a.identity, oldVersion.data, oldFile);
      assert.ok(oldPlain, "the old key no longer opens the old version");
      assert.equal(sha256(oldPlain), snapshotSha);
      assert.equal(await ageDecrypts(b.identity, oldVersion.data, oldFile), null);
      const newPlain = await ageDecrypts(b.identity, currentVersion.data, currentFile);
      assert.ok(newPlain, "age -d with the new key failed");
      assert.equal(sha256(newPlain), snapshotSha);
      assert.equal(await ageDecrypts(a.identity, currentVersion.data, currentFile), null);

      // list: once, with its lock; prune keeps it (cluster of its own, nothing else newer) and says why.
      const list = await runCli(["list", "--to", to, "-o", "json"], { env });
      assertOk(list);
      const entries = (
        JSON.parse(list.stdout) as {
          name: string;
          state: string;
          lock?: { mode: string | null; legalHold: boolean };
        }[]
      ).filter((e) => e.name === name);
      assert.equal(entries.length, 1, `listed ${entries.length} times`);
      assert.equal(entries[0]?.state, "complete");
      assert.equal(entries[0]?.lock?.mode ?? undefined, c.expect.mode);
      assert.equal(entries[0]?.lock?.legalHold, c.expect.legalHold);
      const restored = join(work, `restored-${i}.db`);
      const withB = await runCli(["restore", name, "--to", to, "-i", b.identity, "--to-file", restored], {
        env,
      });
      assertOk(withB);
      assert.equal(sha256(readFileSync(restored)), snapshotSha);
      // A newer backup of the cluster, then prune keeping one: the rekeyed backup is kept, held, with the reason.
      await new Promise((r) => setTimeout(r, 1100));
      assertOk(
        await runCli(
          [
            ...["save", "--from-file", snapshot, "--to", to, "--cluster", `lock${i}`],
            ...["--compress", "none", "--recipient", b.recipient],
          ],
          { env },
        ),
      );
      const requestsBefore = standin.requests.length;
      const prune = await runCli(["prune", "--to", to, "--cluster", `lock${i}`, "--keep-last", "1"], { env });
      assertOk(prune);
      const line = prune.stdout.split("\n").find((l) => l.includes(name));
      assert.ok(line, `prune did not show ${name}:\n${prune.stdout}`);
      assert.match(
        line,
        c.expect.mode ? new RegExp(`kept: object lock ${c.expect.mode} until`) : /kept: legal hold/,
      );
      const deletesOfHeld = standin.requests
        .slice(requestsBefore)
        .filter((r) => r.method === "DELETE" && r.blob.startsWith(`${PREFIX}/${name}`));
      assert.deepEqual(deletesOfHeld, [], "prune asked to delete a held blob");
    });
  }
});
