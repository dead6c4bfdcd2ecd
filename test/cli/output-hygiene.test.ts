import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateIdentity } from "../../src/age/index.ts";
import { backupKey, clusterNameProblem, parseBackupKey } from "../../src/catalog/names.ts";
import { assertOneLineError, registerSecret, runCli } from "../fixtures/cli.ts";
import { freePort } from "../fixtures/ports.ts";

/*
 * What the CLI prints when it is given secrets, absurd durations or hostile cluster names: one line, exit 2 for
 * bad usage, and never any part of a secret. runCli's own secret scan (fixtures/secrets.ts) runs on every command
 * here too; the assertions below are explicit about what must not appear.
 */

let work: string;
let store: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), "hygiene-"));
  store = join(work, "store");
  mkdirSync(store);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Every 4-character run of `secret` that is absent from `text`; fails on the first present. */
function assertNoPartOf(secret: string, text: string): void {
  for (let i = 0; i + 4 <= secret.length; i++) {
    const part = secret.slice(i, i + 4);
    assert.ok(!text.includes(part), `${JSON.stringify(part)} of the secret was printed:\n${text}`);
  }
}

describe("secrets given on the command line are never printed", () => {
  test("save --recipient AGE-SECRET-KEY-1...: exit 2, one line, not 4 characters of the key", async () => {
    const id = generateIdentity();
    registerSecret(id.identity, "the identity passed as --recipient");
    const r = await runCli(["save", "--recipient", id.identity, "--to", store]);
    assertOneLineError(r, 2, /recipient/);
    assertNoPartOf(id.identity.slice("AGE-SECRET-KEY-1".length), r.stderr + r.stdout);
  });

  test("a lower-case secret key in --recipient is caught too", async () => {
    const id = generateIdentity();
    const lower = id.identity.toLowerCase();
    registerSecret(lower, "the lower-case identity passed as --recipient");
    const r = await runCli(["save", "--recipient", lower, "--to", store]);
    assert.equal(r.code, 2, r.stderr);
    assertNoPartOf(lower.slice("age-secret-key-1".length), r.stderr + r.stdout);
  });

  test("--endpoints http://user:PASSWORD@127.0.0.1:1: the connection error shows no password", async () => {
    const password = "Pw-7f3kQz9xR2";
    const port = await freePort();
    const r = await runCli([
      "save",
      "--endpoints",
      `http://user:${password}@127.0.0.1:${port}`,
      "--dial-timeout",
      "1s",
      "--no-encrypt",
      "--to",
      store,
    ]);
    assertOneLineError(r, 1, /no etcd endpoint served a snapshot/);
    assert.match(r.stderr, /http:\/\/user:\[REDACTED\]@127\.0\.0\.1/);
    assertNoPartOf(password, r.stderr + r.stdout);
  });

  test("--user root:password and ETCDCTL_PASSWORD stay out of the error", async () => {
    const port = await freePort();
    const r = await runCli(
      [
        "save",
        "--user",
        "root:Uq8-hunter2-Zx",
        "--endpoints",
        `127.0.0.1:${port}`,
        "--no-encrypt",
        "--to",
        store,
      ],
      { env: { ETCDCTL_PASSWORD: "Env-pw-Kd93" } },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.ok(!r.stderr.includes("hunter2") && !r.stderr.includes("Env-pw"), r.stderr);
  });

  test("commander's own usage errors echo argument values: redacted as well", async () => {
    const id = generateIdentity();
    registerSecret(id.identity, "the identity passed as --log-format");
    const r = await runCli([
      "daemon",
      "--log-format",
      id.identity,
      "--schedule",
      "@daily",
      "--to",
      store,
      "--no-encrypt",
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[REDACTED\]/);
    assertNoPartOf(id.identity.slice("AGE-SECRET-KEY-1".length), r.stderr + r.stdout);
  });
});

describe("durations: one parser, bounded at what a timer holds", () => {
  test("save --dial-timeout 1000h: one line, exit 2, no TimeoutOverflowWarning", async () => {
    const r = await runCli(["save", "--dial-timeout", "1000h", "--no-encrypt", "--to", store]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "etcd-backup: --dial-timeout: longer than the longest supported duration (24d20h) (use a shorter duration)\n",
    );
  });

  test("daemon --shutdown-grace 100d is refused at start, not turned into 1 ms", async () => {
    const r = await runCli([
      "daemon",
      "--schedule",
      "@daily",
      "--to",
      store,
      "--no-encrypt",
      "--metrics-addr",
      "127.0.0.1:0",
      "--shutdown-grace",
      "100d",
    ]);
    assertOneLineError(r, 2, /--shutdown-grace: longer than the longest supported duration \(24d20h\)/);
  });

  test("save and daemon read `--dial-timeout 5` alike (5 s); the daemon names only the real problem", async () => {
    const r = await runCli([
      "daemon",
      "--schedule",
      "@daily",
      "--to",
      store,
      "--no-encrypt",
      "--dial-timeout",
      "5",
      "--metrics-addr",
      "nowhere",
    ]);
    assertOneLineError(r, 2, /1 problem: --metrics-addr: is not host:port/);
    assert.doesNotMatch(r.stderr, /dial-timeout/);
    const port = await freePort();
    const save = await runCli([
      "save",
      "--endpoints",
      `127.0.0.1:${port}`,
      "--dial-timeout",
      "5",
      "--no-encrypt",
      "--to",
      store,
    ]);
    assertOneLineError(save, 1, /no etcd endpoint served a snapshot/);
  });

  test("operator: Lease timing and --metrics-addr through the same parsers", async () => {
    const lease = await runCli(["operator", "--lease-duration", "30d"]);
    assertOneLineError(lease, 2, /--lease-duration 30d: longer than the longest supported duration/);
    const retry = await runCli(["operator", "--retry-period", "soon"]);
    assertOneLineError(retry, 2, /--retry-period soon: is not a duration/);
    const addr = await runCli(["operator", "--metrics-addr", "nowhere"]);
    assertOneLineError(addr, 2, /--metrics-addr "nowhere": is not host:port, :port or \[v6\]:port/);
  });
});

describe("cluster names", () => {
  const bad: [string, RegExp][] = [
    ["../x", /contains a path separator/],
    ["a/b", /contains a path separator/],
    ["..", /contains '\.\.'/],
    ["a..b", /contains '\.\.'/],
    ["x\u0001y", /contains a control character/],
    ["x\ny", /contains a control character/],
    ["-x", /does not start with a letter or digit/],
    [".hidden", /does not start with a letter or digit/],
    ["a b", /holds characters other than/],
    ["a:b", /holds characters other than/],
    ["x".repeat(101), /longer than 100 characters/],
  ];
  for (const [name, why] of bad) {
    test(`refused: ${JSON.stringify(name).slice(0, 30)}`, () =>
      assert.match(clusterNameProblem(name) ?? "", why));
  }

  test("every accepted name round-trips through a backup's name", () => {
    for (const name of ["prod", "a", "x".repeat(100), "k8s.prod_eu-1", "prod-2026-11-23T20", "9", "a.b"]) {
      assert.equal(clusterNameProblem(name), null, name);
      for (const compression of ["zstd", "none"] as const) {
        const key = backupKey({ cluster: name, time: new Date(), compression, encrypted: true });
        assert.equal(parseBackupKey(key)?.cluster, name);
      }
    }
  });

  const fronts: [string, string[]][] = [
    ["prune", ["prune", "--to", "STORE", "--keep-last", "1", "--cluster", "../x"]],
    ["list", ["list", "--to", "STORE", "--cluster", "../x"]],
    ["save", ["save", "--to", "STORE", "--no-encrypt", "--cluster", "../x"]],
    ["restore", ["restore", "latest", "--to", "STORE", "--to-file", "OUT", "--cluster", "../x"]],
    ["verify", ["verify", "latest", "--to", "STORE", "--cluster", "a/../../b"]],
    ["daemon", ["daemon", "--schedule", "@daily", "--to", "STORE", "--no-encrypt", "--cluster", "../x"]],
  ];
  for (const [what, args] of fronts) {
    test(`${what} --cluster ../x: one line, exit 2`, async () => {
      const r = await runCli(
        args.map((a) => (a === "STORE" ? store : a === "OUT" ? join(work, "out.db") : a)),
      );
      assertOneLineError(r, 2, /--cluster "[^"]*": contains a path separator/);
    });
  }

  test("daemon: CLUSTER_NAME and the config file's cluster are checked as well", async () => {
    const env = await runCli(["daemon", "--schedule", "@daily", "--to", store, "--no-encrypt"], {
      env: { CLUSTER_NAME: "a..b" },
    });
    assertOneLineError(env, 2, /--cluster "a\.\.b": contains '\.\.'/);
    const file = join(work, "daemon.yaml");
    writeFileSync(file, "schedule: '@daily'\nto: /tmp/x\nno-encrypt: true\ncluster: ../x\n");
    const fromFile = await runCli(["daemon", "--config", file]);
    assertOneLineError(fromFile, 2, /etcd-backup: --cluster: contains a path separator/);
  });
});
