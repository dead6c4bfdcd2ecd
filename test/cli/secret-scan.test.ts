import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
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

  test("a private key's public half is not a secret: its certificate passes, its private part does not", () => {
    for (const [type, options] of [
      ["ec", { namedCurve: "P-256" }],
      ["rsa", { modulusLength: 2048 }],
    ] as const) {
      for (let round = 0; round < 6; round++) {
        // Six keys each: the key's and the certificate's base64 align differently from one key to the next.
        const pair = generateKeyPairSync(type as "ec", options as { namedCurve: string });
        const pem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
        const file = join(work, `${type}-${round}.key`);
        writeFileSync(file, pem);
        registerSecretFile(file, `test ${type} key ${round}`);
        // What a certificate or a ConfigMap holding it shows: the public key, in base64 at any of its alignments.
        const spki = pair.publicKey.export({ type: "spki", format: "der" });
        for (const pad of [0, 1, 2]) {
          const shown = Buffer.concat([Buffer.alloc(pad, 0x30), spki]).toString("base64");
          assert.deepEqual(findSecrets(shown), [], `${type} key ${round}, public key shifted by ${pad}`);
        }
        const jwk = pair.privateKey.export({ format: "jwk" }) as { d: string };
        const der = pair.privateKey.export({ type: "pkcs8", format: "der" });
        const d = Buffer.from(jwk.d, "base64url");
        const at = der.indexOf(d);
        // 24 characters of the private scalar as the PEM shows it (within one of its 64-character lines) are caught.
        const body = der.toString("base64");
        const first = Math.ceil(((at + 1) * 4) / 3);
        const last = Math.floor(((at + d.length) * 4) / 3) - 1;
        let from = first;
        while (Math.floor(from / 64) !== Math.floor((from + 23) / 64)) from++;
        assert.ok(from + 23 <= last, `${type} ${round}: no 24 characters of the scalar within one line`);
        assert.match(
          findSecrets(`leak ${body.slice(from, from + 24)}`).join(),
          /in part/,
          `${type} ${round}`,
        );
      }
    }
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
