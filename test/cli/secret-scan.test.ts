import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  assertNoSecrets,
  assertNoSecretsInDir,
  registerSecret,
  registerSecretFile,
  runCli,
} from "../fixtures/cli.ts";
import { findSecrets } from "../fixtures/secrets.ts";

/* The suite's secret scan must be able to fail: these tests make it see secrets and check that it does. */

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), "secret-scan-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe("findSecrets", () => {
  test("registered values, whole and in part (any 16 characters of a long one)", () => {
    const secret = "k3Jd9-Qz7vLp2-Xw8RtY6-Nm4Hb";
    registerSecret(secret, "a test secret");
    assert.deepEqual(findSecrets(`x ${secret} y`), ["a test secret"]);
    assert.deepEqual(findSecrets(`x ${secret.slice(3, 3 + 23)} y`), ["a test secret (in part)"]);
    assert.deepEqual(findSecrets("nothing here"), []);
  });

  test("shapes whoever made them: an age secret key, even cut short, and a PEM private key", () => {
    assert.deepEqual(findSecrets('invalid recipient "AGE-SECRET-KEY-1QY…"'), [
      "an age secret key (or part of one)",
    ]);
    assert.deepEqual(findSecrets("-----BEGIN PRIVATE KEY-----"), ["a PEM private key"]);
    // What the redactor leaves is clean.
    assert.deepEqual(findSecrets('invalid recipient "[REDACTED]…"'), []);
  });

  test("secret files: each line is registered, and the directory scan skips the file itself", () => {
    const key = join(work, "tls.key");
    const body = "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5GHjp7ePTOpU+oAoGCCqGSM49";
    writeFileSync(key, `-----BEGIN EC PRIVATE KEY-----\n${body}\n-----END EC PRIVATE KEY-----\n`);
    registerSecretFile(key, "a test TLS key");
    assert.deepEqual(findSecrets(`leaked ${body.slice(10, 40)}`), ["a test TLS key (in part)"]);
    assert.doesNotThrow(() => assertNoSecretsInDir(work));
    writeFileSync(join(work, "manifest.json"), JSON.stringify({ key: body }));
    assert.throws(() => assertNoSecretsInDir(work), /manifest\.json holds a test TLS key/);
    rmSync(join(work, "manifest.json"));
  });

  test("assertNoSecrets names the output", () => {
    assert.throws(
      () => assertNoSecrets("AGE-SECRET-KEY-1ABC", "the status page"),
      /the status page holds an age/,
    );
  });
});

describe("runCli fails a command that prints a secret", () => {
  test("keygen without -o prints the identity on stdout: refused unless the test says that is its job", async () => {
    await assert.rejects(runCli(["keygen"]), /stdout of etcd-backup keygen holds an age secret key/);
    const r = await runCli(["keygen"], { printsSecret: "stdout" });
    assert.equal(r.code, 0);
    const identity = /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(r.stdout)?.[0];
    assert.ok(identity);
    registerSecret(identity, "the identity keygen printed");
  });

  test("a passphrase file given to a command is registered before it runs", async () => {
    const file = join(work, "pass.txt");
    writeFileSync(file, "correct-horse-battery-staple-7\n");
    await runCli(["save", "--passphrase-file", file, "--no-encrypt", "--to", work]);
    assert.deepEqual(findSecrets("correct-horse-battery-staple-7"), ["a passphrase (--passphrase-file)"]);
  });
});
