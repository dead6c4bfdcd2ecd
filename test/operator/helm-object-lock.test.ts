/**
 * The Helm chart's object lock: `helm template` (helm v3 built into .peers/ by scripts/install-peers.sh) with the
 * top-level `objectLock` values, and with the older `s3.objectLock` ones, renders ETCD_BACKUP_OBJECT_LOCK,
 * ETCD_BACKUP_OBJECT_LOCK_DAYS and ETCD_BACKUP_LEGAL_HOLD into the daemon's Deployment and the CronJob's `save`;
 * each rendered container (its args and environment, with what its Secrets would add) is then read by the CLI's
 * own path (commander parses the command line and variables, then the shared settings, completion and parser:
 * `daemonConfigFromCommand`, `jobConfigFromCommand`), only the commands' actions replaced, and gives the lock
 * asked for. A lock whose days would be missing at start is refused by `helm template` itself.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { Command } from "commander";
import { parseAllDocuments } from "yaml";
import { daemonConfigFromCommand, jobConfigFromCommand } from "../../src/cli/command-settings.ts";
import type { BackupJobConfig } from "../../src/config/schema.ts";
import { helmPeer } from "../fixtures/peers.ts";

const run = promisify(execFile);
const CHART = join(import.meta.dirname, "..", "..", "deploy", "helm", "etcd-backup");
/** What the recipients Secret (encryption.recipientsSecret) holds in a real install. */
const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
const LOCK_ENV = ["ETCD_BACKUP_OBJECT_LOCK", "ETCD_BACKUP_OBJECT_LOCK_DAYS", "ETCD_BACKUP_LEGAL_HOLD"];

interface Container {
  args: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
}

const helm = helmPeer()?.helm;

async function render(set: string[]): Promise<{ stdout: string; stderr: string }> {
  return await run(helm!, ["template", "t", CHART, "-n", "etcd-backup", "--set", set.join(",")]);
}

/** The etcd-backup container of the mode's workload (daemon: Deployment; cronjob: CronJob). */
async function container(mode: "daemon" | "cronjob", set: string[]): Promise<Container> {
  const objs = parseAllDocuments((await render([`mode=${mode}`, ...set])).stdout)
    .map((d) => d.toJS())
    .filter(Boolean);
  const kind = mode === "daemon" ? "Deployment" : "CronJob";
  const workloads = objs.filter((o) => o.kind === kind);
  assert.equal(workloads.length, 1, `one ${kind}`);
  const spec =
    mode === "daemon" ? workloads[0].spec.template.spec : workloads[0].spec.jobTemplate.spec.template.spec;
  const c = spec.containers.find((x: { name: string }) => x.name === "etcd-backup");
  return { args: c.args, env: c.env ?? [] };
}

const lockEnv = (c: Container) =>
  Object.fromEntries(c.env.filter((e) => LOCK_ENV.includes(e.name)).map((e) => [e.name, e.value]));

/**
 * The job configuration the container's command would run with: its args through the command's own parsing,
 * its `env` values (and the recipients Secret's variable) as the process environment. Commander reads option
 * variables from process.env while parsing, so it is set for the parse and restored after.
 */
async function configOf(c: Container): Promise<BackupJobConfig> {
  const [name, ...args] = c.args as [string, ...string[]];
  assert.ok(name === "daemon" || name === "save", name);
  const env: Record<string, string> = { ETCD_BACKUP_RECIPIENTS: RECIPIENT };
  for (const e of c.env) {
    assert.ok(e.value !== undefined, `${e.name}: a value (no Secret reference in these renders)`);
    env[e.name] = e.value;
  }
  const program = new Command().exitOverride();
  const module = await import(`../../src/cli/commands/${name}.ts`);
  const saved = { ...process.env };
  for (const k of Object.keys(process.env))
    if (/^(ETCD|AWS|AZURE_|ETCDCTL|TALOS|BUCKET|CLUSTER|S3_|AGE_|GOOGLE|STORAGE_EMULATOR)/.test(k))
      delete process.env[k];
  Object.assign(process.env, env);
  try {
    module.register(program);
    const cmd = program.commands.find((x) => x.name() === name)!;
    let out: BackupJobConfig | undefined;
    cmd.action(async (flags: Record<string, unknown>) => {
      out =
        name === "save"
          ? await jobConfigFromCommand(cmd, flags, process.env)
          : (await daemonConfigFromCommand(cmd, flags, process.env)).job;
    });
    await program.parseAsync(["node", "etcd-backup", name, ...args]);
    assert.ok(out, "the command's action ran");
    return out;
  } finally {
    process.env = saved;
  }
}

describe("helm template: objectLock values reach daemon and cronjob as settings the CLI accepts", {
  skip: helm ? false : "helm is not built (scripts/install-peers.sh helm)",
}, () => {
  const cases: { what: string; set: string[]; env: Record<string, string>; lock: object }[] = [
    {
      what: "objectLock (top level): compliance, 3 days, legal hold",
      set: ["objectLock.mode=compliance", "objectLock.days=3", "objectLock.legalHold=true"],
      env: {
        ETCD_BACKUP_OBJECT_LOCK: "compliance",
        ETCD_BACKUP_OBJECT_LOCK_DAYS: "3",
        ETCD_BACKUP_LEGAL_HOLD: "true",
      },
      lock: { mode: "compliance", days: 3, legalHold: true },
    },
    {
      what: "s3.objectLock (the older place): governance, 2 days",
      set: ["s3.objectLock.mode=governance", "s3.objectLock.days=2"],
      env: { ETCD_BACKUP_OBJECT_LOCK: "governance", ETCD_BACKUP_OBJECT_LOCK_DAYS: "2" },
      lock: { mode: "governance", days: 2 },
    },
    {
      what: "s3.objectLock.legalHold alone: a hold, no retention",
      set: ["s3.objectLock.legalHold=true"],
      env: { ETCD_BACKUP_LEGAL_HOLD: "true" },
      lock: { legalHold: true },
    },
    {
      what: "objectLock wins over s3.objectLock where both are set",
      set: [
        "objectLock.mode=compliance",
        "objectLock.days=5",
        "s3.objectLock.mode=governance",
        "s3.objectLock.days=1",
      ],
      env: { ETCD_BACKUP_OBJECT_LOCK: "compliance", ETCD_BACKUP_OBJECT_LOCK_DAYS: "5" },
      lock: { mode: "compliance", days: 5 },
    },
  ];
  for (const mode of ["daemon", "cronjob"] as const) {
    for (const destination of ["gs://backups/prod", "s3://backups/prod", "azblob://backups/prod"]) {
      for (const c of cases) {
        test(`${mode}, ${destination}: ${c.what}`, async () => {
          const rendered = await container(mode, [`destination=${destination}`, ...c.set]);
          assert.deepEqual(lockEnv(rendered), c.env);
          const config = await configOf(rendered);
          assert.equal(config.destination, destination);
          assert.deepEqual(config.objectLock, c.lock);
        });
      }
    }
  }

  test("default values: no lock variable, and the CLI reads no lock", async () => {
    for (const mode of ["daemon", "cronjob"] as const) {
      const rendered = await container(mode, ["destination=gs://backups/prod"]);
      assert.deepEqual(lockEnv(rendered), {});
      assert.equal((await configOf(rendered)).objectLock, undefined);
    }
  });

  test("daemon, objectLock.mode without days: retention.keepWithin is rendered and gives the days (36h: 2)", async () => {
    const rendered = await container("daemon", [
      "destination=gs://backups/prod",
      "objectLock.mode=governance",
      "retention.keepWithin=36h",
    ]);
    assert.ok(rendered.args.includes("--keep-within=36h"), rendered.args.join(" "));
    assert.deepEqual(lockEnv(rendered), { ETCD_BACKUP_OBJECT_LOCK: "governance" });
    const config = await configOf(rendered);
    assert.deepEqual(config.objectLock, { mode: "governance", days: 2 });
    assert.equal(config.retention?.withinMs, 36 * 3_600_000);
  });

  test("objectLock.mode without days, where nothing gives them: helm template refuses, saying what to set", async () => {
    await assert.rejects(
      render(["mode=cronjob", "destination=gs://backups/prod", "objectLock.mode=compliance"]),
      (err: Error & { stderr: string }) => {
        assert.match(
          err.stderr,
          /objectLock\.days: is required with objectLock\.mode compliance in mode cronjob \(set objectLock\.days; only the daemon defaults them to retention\.keepWithin\)/,
        );
        return true;
      },
    );
    await assert.rejects(
      render(["mode=daemon", "destination=gs://backups/prod", "s3.objectLock.mode=governance"]),
      (err: Error & { stderr: string }) => {
        assert.match(
          err.stderr,
          /objectLock\.days: is required with objectLock\.mode governance \(set objectLock\.days, or retention\.keepWithin for the daemon to lock each backup that long\)/,
        );
        return true;
      },
    );
  });
});
