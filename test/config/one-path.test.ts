/**
 * One configuration path: the same settings given to `save` as flags, to `daemon` as flags, to `daemon` as a
 * YAML file, and as environment variables, become the same job configuration. Each row is one setting (or a
 * few that belong together); each front end's translation is run for real (commander parses the command line,
 * then the shared settings, completion and parser run), only the commands' actions are replaced.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command } from "commander";
import { daemonConfigFromCommand, jobConfigFromCommand } from "../../src/cli/command-settings.ts";
import { type BackupJobConfig, parseBackupJobConfig } from "../../src/config/schema.ts";
import { jobConfigFromSpec } from "../../src/operator/resolve.ts";

const dir = mkdtempSync(join(tmpdir(), "etcd-backup-one-path-"));
const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/** Runs `cli` (argv after the command name) through the command `name`'s parsing, returning its config. */
async function viaCommand(
  name: "save" | "daemon",
  args: string[],
  env: Record<string, string | undefined>,
): Promise<BackupJobConfig> {
  const program = new Command().exitOverride();
  const module = await import(`../../src/cli/commands/${name}.ts`);
  const saved = { ...process.env };
  // commander reads option variables from process.env while parsing.
  for (const k of Object.keys(process.env))
    if (/^(ETCD|AWS|AZURE_|ETCDCTL|TALOS|BUCKET|CLUSTER|S3_|AGE_)/.test(k)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    module.register(program);
    const cmd = program.commands.find((c) => c.name() === name)!;
    let out: BackupJobConfig | undefined;
    cmd.action(async (flags: Record<string, unknown>) => {
      out =
        name === "save"
          ? await jobConfigFromCommand(cmd, flags, process.env)
          : (await daemonConfigFromCommand(cmd, flags, process.env)).job;
    });
    await program.parseAsync(["node", "etcd-backup", name, ...args]);
    return out!;
  } finally {
    process.env = saved;
  }
}

/** The settings as a YAML file for `daemon --config`. */
function yamlFile(settings: Record<string, unknown>): string {
  const path = join(dir, `settings-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, JSON.stringify(settings)); // JSON is YAML
  return path;
}

const base = { to: join(dir, "backups") };
const ROWS: { what: string; flags: string[]; file: Record<string, unknown>; env?: Record<string, string> }[] =
  [
    {
      what: "etcd endpoints, TLS files, a bare-number dial timeout (seconds everywhere)",
      flags: [
        "--endpoints",
        "https://10.0.0.1:2379,https://10.0.0.2:2379",
        "--cacert",
        "/ca.crt",
        "--cert",
        "/c.crt",
        "--key",
        "/c.key",
        "--dial-timeout",
        "7",
      ],
      file: {
        endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"],
        cacert: "/ca.crt",
        cert: "/c.crt",
        key: "/c.key",
        dialTimeout: 7,
      },
    },
    {
      what: "a user with its password, and a Go duration",
      flags: ["--user", "root:pw", "--dial-timeout", "1m30s"],
      file: { user: "root:pw", dialTimeout: "1m30s" },
    },
    {
      what: "S3 destination and settings",
      flags: [
        "--to",
        "s3://bucket/prefix",
        "--s3-endpoint",
        "http://127.0.0.1:9000",
        "--s3-region",
        "eu-1",
        "--s3-path-style",
        "--s3-part-size",
        "16",
        "--s3-concurrency",
        "3",
        "--s3-storage-class",
        "STANDARD_IA",
      ],
      file: {
        to: "s3://bucket/prefix",
        s3: {
          endpoint: "http://127.0.0.1:9000",
          region: "eu-1",
          pathStyle: true,
          partSizeMiB: 16,
          concurrency: 3,
          storageClass: "STANDARD_IA",
        },
      },
    },
    {
      what: "Azure Blob destination and settings",
      flags: [
        "--to",
        "azblob://backups/prod",
        "--azure-account",
        "acct1",
        "--azure-endpoint",
        "http://127.0.0.1:10000/acct1",
        "--azure-account-key-file",
        "/azure.key",
        "--azure-block-size",
        "16",
        "--azure-concurrency",
        "2",
      ],
      file: {
        to: "azblob://backups/prod",
        azure: {
          account: "acct1",
          endpoint: "http://127.0.0.1:10000/acct1",
          accountKeyFile: "/azure.key",
          blockSizeMiB: 16,
          concurrency: 2,
        },
      },
    },
    {
      what: "S3 Object Lock: mode, days and a legal hold",
      flags: [
        ...["--to", "s3://bucket/prefix"],
        ...["--s3-object-lock", "compliance", "--s3-object-lock-days", "30", "--s3-legal-hold"],
      ],
      file: {
        to: "s3://bucket/prefix",
        s3: { objectLock: "compliance", objectLockDays: 30, legalHold: true },
      },
    },
    {
      what: "S3 Object Lock from the environment",
      flags: ["--to", "s3://bucket/prefix"],
      file: { to: "s3://bucket/prefix" },
      env: {
        ETCD_BACKUP_S3_OBJECT_LOCK: "GOVERNANCE",
        ETCD_BACKUP_S3_OBJECT_LOCK_DAYS: "7",
        ETCD_BACKUP_S3_LEGAL_HOLD: "true",
      },
    },
    {
      what: "compression none and a cluster name",
      flags: ["--compress", "none", "--cluster", "prod-eu"],
      file: { compress: "none", cluster: "prod-eu" },
    },
    {
      what: "zstd level",
      flags: ["--level", "9"],
      file: { level: 9 },
    },
    {
      what: "a passphrase file instead of recipients",
      flags: ["--passphrase-file", "/pass.txt"],
      file: { passphraseFile: "/pass.txt" },
      env: {},
    },
    {
      what: "--no-encrypt",
      flags: ["--no-encrypt"],
      file: { encrypt: false },
    },
    {
      what: "the Talos source by its flags, with etcd's long --endpoints meaning the Talos endpoints",
      flags: ["--talosconfig", "/talosconfig", "--context", "prod", "-n", "10.5.0.2", "-e", "10.5.0.1"],
      file: {
        talosconfig: "/talosconfig",
        context: "prod",
        nodes: ["10.5.0.2"],
        talosEndpoints: ["10.5.0.1"],
      },
    },
  ];

describe("one configuration path: save flags, daemon flags, daemon YAML and environment give the same job", () => {
  for (const row of ROWS) {
    test(row.what, async () => {
      const encrypted = !row.flags.includes("--no-encrypt") && !row.flags.includes("--passphrase-file");
      const keyFlags = encrypted ? ["--recipient", RECIPIENT] : [];
      const keyFile = encrypted ? { recipient: [RECIPIENT] } : {};
      const to = row.flags.includes("--to") ? [] : ["--to", base.to];
      const toFile = row.file.to ? {} : base;
      const env = row.env ?? {};
      const save = await viaCommand("save", [...to, ...keyFlags, ...row.flags], env);
      const daemonFlags = await viaCommand(
        "daemon",
        ["--schedule", "@daily", ...to, ...keyFlags, ...row.flags],
        env,
      );
      const daemonYaml = await viaCommand(
        "daemon",
        ["--config", yamlFile({ schedule: "@daily", ...toFile, ...keyFile, ...row.file })],
        env,
      );
      const baseline = await viaCommand("save", ["--to", base.to, "--recipient", RECIPIENT], {});
      assert.notDeepEqual(save, baseline, "the row's settings changed nothing: the test would prove nothing");
      assert.deepEqual(daemonFlags, save, "daemon flags vs save flags");
      assert.deepEqual(daemonYaml, save, "daemon YAML vs save flags");
    });
  }

  test("environment variables mean the same to save and daemon (etcdctl's, AWS', ours, talos-backup's)", async () => {
    const env = {
      ETCDCTL_ENDPOINTS: "http://127.0.0.1:23790",
      ETCDCTL_DIAL_TIMEOUT: "3s",
      ETCD_BACKUP_TO: base.to,
      ETCD_BACKUP_RECIPIENTS: RECIPIENT,
      CLUSTER_NAME: "from-env",
      ENABLE_COMPRESSION: "true",
      AWS_REGION: "us-west-2",
    };
    const save = await viaCommand("save", [], env);
    const daemon = await viaCommand("daemon", ["--schedule", "@daily"], env);
    assert.deepEqual(daemon, save);
    assert.equal(save.cluster, "from-env");
    assert.equal(save.compression, "zstd");
    assert.equal(save.source.kind, "etcd");
    assert.deepEqual(save.source.kind === "etcd" && save.source.endpoints, ["http://127.0.0.1:23790"]);
    assert.equal(save.source.kind === "etcd" && save.source.dialTimeoutMs, 3000);
  });

  test("talos-backup's variables alone: no destination flag, compression off by default, its age key", async () => {
    const env = { BUCKET: "backups", S3_PREFIX: "prod", AGE_X25519_PUBLIC_KEY: RECIPIENT };
    const save = await viaCommand("save", [], env);
    const daemon = await viaCommand("daemon", ["--schedule", "@daily"], env);
    assert.deepEqual(daemon, save);
    assert.equal(
      save.destination,
      undefined,
      "the destination is talos-backup's, resolved with the cluster name",
    );
    assert.equal(save.compression, "none");
    assert.deepEqual(save.encryption.kind === "age" && save.encryption.recipients, [RECIPIENT]);
  });

  test("the same mistakes are refused the same way by both", async () => {
    for (const args of [
      ["--dial-timeout", "1000h"],
      ["--cluster", "../x"],
      ["--recipient", RECIPIENT, "--no-encrypt"],
    ]) {
      const errors: string[] = [];
      for (const name of ["save", "daemon"] as const) {
        const extra = name === "daemon" ? ["--schedule", "@daily"] : [];
        await viaCommand(name, ["--to", base.to, ...extra, ...args], {}).then(
          () => errors.push("accepted"),
          (err: Error) => errors.push(err.message),
        );
      }
      assert.equal(errors[0], errors[1], `${args.join(" ")}: save and daemon disagree`);
      assert.notEqual(errors[0], "accepted");
    }
  });

  test("object lock days default to --keep-within (rounded up to whole days) for the daemon; without either, one problem", async () => {
    const daemon = await viaCommand(
      "daemon",
      [
        "--schedule",
        "@daily",
        "--to",
        "s3://b/p",
        "--recipient",
        RECIPIENT,
        "--s3-object-lock",
        "governance",
      ],
      { ETCD_BACKUP_KEEP_WITHIN: "36h" },
    );
    assert.deepEqual(daemon.objectLock, { mode: "governance", days: 2 });
    const file = await viaCommand(
      "daemon",
      [
        "--config",
        yamlFile({
          schedule: "@daily",
          to: "s3://b/p",
          recipient: [RECIPIENT],
          keepWithin: "30d",
          s3: { objectLock: "compliance" },
        }),
      ],
      {},
    );
    assert.deepEqual(file.objectLock, { mode: "compliance", days: 30 });
    const fromEnv = await viaCommand("save", ["--to", "s3://b/p", "--recipient", RECIPIENT], {
      ETCD_BACKUP_S3_OBJECT_LOCK: "GOVERNANCE",
      ETCD_BACKUP_S3_OBJECT_LOCK_DAYS: "7",
      ETCD_BACKUP_S3_LEGAL_HOLD: "true",
    });
    assert.deepEqual(fromEnv.objectLock, { mode: "governance", days: 7, legalHold: true });
    // `false` means no hold (a boolean flag's variable taken by commander would mean on, whatever its value).
    for (const name of ["save", "daemon"] as const) {
      const off = await viaCommand(
        name,
        [
          ...(name === "daemon" ? ["--schedule", "@daily"] : []),
          "--to",
          "s3://b/p",
          "--recipient",
          RECIPIENT,
        ],
        { ETCD_BACKUP_S3_LEGAL_HOLD: "false" },
      );
      assert.equal(off.objectLock, undefined, name);
    }
    await assert.rejects(
      viaCommand(
        "save",
        ["--to", "s3://b/p", "--recipient", RECIPIENT, "--s3-object-lock", "governance"],
        {},
      ),
      /^UsageError: --s3-object-lock-days: is required with --s3-object-lock governance/,
    );
    await assert.rejects(
      viaCommand("save", ["--to", "s3://b/p", "--recipient", RECIPIENT, "--s3-object-lock-days", "3"], {}),
      /--s3-object-lock-days: needs --s3-object-lock/,
    );
  });

  test("the destination-neutral lock (--object-lock, --object-lock-days, --legal-hold) means the same to save, the daemon and a file, for every object store", async () => {
    const save = await viaCommand(
      "save",
      [
        ...["--to", "gs://b/p", "--recipient", RECIPIENT],
        ...["--object-lock", "compliance", "--object-lock-days", "9", "--legal-hold"],
      ],
      {},
    );
    assert.deepEqual(save.objectLock, { mode: "compliance", days: 9, legalHold: true });
    assert.equal(save.s3.objectLock, undefined);
    const fromEnv = await viaCommand(
      "daemon",
      ["--schedule", "@daily", "--to", "azblob://c/p", "--recipient", RECIPIENT],
      { ETCD_BACKUP_OBJECT_LOCK: "Governance", ETCD_BACKUP_KEEP_WITHIN: "3d", ETCD_BACKUP_LEGAL_HOLD: "yes" },
    );
    assert.deepEqual(fromEnv.objectLock, { mode: "governance", days: 3, legalHold: true });
    const file = await viaCommand(
      "daemon",
      [
        "--config",
        yamlFile({
          schedule: "@daily",
          to: "s3://b/p",
          recipient: [RECIPIENT],
          objectLock: "governance",
          objectLockDays: 5,
          legalHold: false,
        }),
      ],
      {},
    );
    assert.deepEqual(file.objectLock, { mode: "governance", days: 5 });
    const off = await viaCommand("save", ["--to", "gs://b/p", "--recipient", RECIPIENT], {
      ETCD_BACKUP_LEGAL_HOLD: "false",
    });
    assert.equal(off.objectLock, undefined);
    // Both names, agreeing: fine; disagreeing: which one was meant cannot be guessed.
    const both = await viaCommand(
      "save",
      [
        ...["--to", "s3://b/p", "--recipient", RECIPIENT, "--object-lock", "compliance"],
        ...["--s3-object-lock", "compliance", "--object-lock-days", "2"],
      ],
      {},
    );
    assert.deepEqual(both.objectLock, { mode: "compliance", days: 2 });
    await assert.rejects(
      viaCommand(
        "save",
        [
          ...["--to", "s3://b/p", "--recipient", RECIPIENT, "--object-lock", "compliance"],
          ...["--s3-object-lock", "governance", "--object-lock-days", "2"],
        ],
        {},
      ),
      /^UsageError: --object-lock: contradicts --s3-object-lock \(give only --object-lock\)/,
    );
    await assert.rejects(
      viaCommand("save", ["--to", "gs://b/p", "--recipient", RECIPIENT, "--object-lock-days", "3"], {}),
      /^UsageError: --object-lock-days: needs --object-lock/,
    );
    await assert.rejects(
      viaCommand("save", ["--to", "gs://b/p", "--recipient", RECIPIENT, "--object-lock", "governance"], {}),
      /^UsageError: --object-lock-days: is required with --object-lock governance/,
    );
    // A directory cannot be locked: refused rather than written unlocked.
    await assert.rejects(
      viaCommand(
        "save",
        [
          "--to",
          join(dir, "locked"),
          "--recipient",
          RECIPIENT,
          "--object-lock",
          "compliance",
          "--object-lock-days",
          "1",
        ],
        {},
      ),
      /^UsageError: --object-lock: .* is not an object store, nothing there can be locked/,
    );
  });

  test("an EtcdBackup spec means what the same flags mean to save (the operator's translation)", async () => {
    const flags = [
      "--endpoints",
      "https://10.0.0.1:2379,https://10.0.0.2:2379",
      "--dial-timeout",
      "7",
      "--to",
      "s3://backups/clusters/prod",
      "--s3-endpoint",
      "https://minio.example:9000",
      "--s3-region",
      "eu-1",
      "--s3-path-style",
      "--recipient",
      RECIPIENT,
      "--compress",
      "none",
      "--level",
      "5",
      "--cluster",
      "prod",
      ...["--s3-object-lock", "governance", "--s3-object-lock-days", "14", "--s3-legal-hold"],
    ];
    const save = await viaCommand("save", flags, {});
    const spec = {
      clusterName: "prod",
      source: {
        etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], dialTimeoutSeconds: 7 },
      },
      destination: {
        s3: {
          bucket: "backups",
          prefix: "clusters/prod",
          endpoint: "https://minio.example:9000",
          region: "eu-1",
          pathStyle: true,
          objectLock: { mode: "governance" as const, days: 14, legalHold: true },
        },
      },
      encryption: { recipients: [RECIPIENT] },
      compression: "none" as const,
      compressionLevel: 5,
    };
    const noReads = { secret: async () => null, configMap: async () => null };
    const operator = parseBackupJobConfig(
      await jobConfigFromSpec(spec, "prod", { namespace: "default", reader: noReads, warn: () => {} }),
    );
    assert.deepEqual(operator, save);
  });
});
