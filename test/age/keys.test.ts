import assert from "node:assert/strict";
import { test } from "node:test";
import { AgeKeyError } from "../../src/age/errors.ts";
import {
  generateIdentity,
  identityFileText,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  recipientOf,
} from "../../src/age/index.ts";

test("identity files: comments, blank lines, CRLF, several keys", () => {
  const a = generateIdentity();
  const b = generateIdentity();
  const text = identityFileText(a) + "\r\n" + identityFileText(b).replaceAll("\n", "\r\n");
  assert.equal(parseIdentities(text).length, 2);
  assert.match(
    identityFileText(a),
    /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n# public key: age1\S+\nAGE-SECRET-KEY-1\S+\n$/,
  );
});

test("a bad identity file names the line, never its content", () => {
  const key = generateIdentity().identity;
  const broken = key.slice(0, -1) + (key.endsWith("Q") ? "P" : "Q");
  for (const text of [`# mine\n${broken}\n`, `${key.toLowerCase()}\n`, `${key}extra\n`]) {
    const err = (() => {
      try {
        parseIdentities(text);
      } catch (e) {
        return e as AgeKeyError;
      }
      assert.fail("accepted a bad identity file");
    })();
    assert.ok(err instanceof AgeKeyError);
    assert.match(err.message, /line \d+/);
    for (const secret of [key, broken, key.slice(16, 40), key.toLowerCase().slice(16, 40)]) {
      assert.ok(!err.message.includes(secret) && !(err.hint ?? "").includes(secret));
    }
  }
  assert.throws(() => parseIdentities("# nothing here\n"), /no identities/);
  assert.throws(
    () => recipientOf("AGE-SECRET-KEY-1NOTAKEY"),
    (e: Error) => !e.message.includes("NOTAKEY"),
  );
});

test("recipients: public keys parse, bad ones are named, files skip comments", () => {
  const { recipient } = generateIdentity();
  const r = parseRecipient(`  ${recipient}\n`);
  assert.equal(r.kind, "X25519");
  assert.equal(r.publicKey, recipient);
  assert.throws(
    () => parseRecipient("age1notakey"),
    (e: AgeKeyError) => e.message.includes("age1notakey"),
  );
  assert.throws(() => parseRecipient(recipient.toUpperCase()), AgeKeyError);
  assert.throws(() => parseRecipient("ssh-ed25519 AAAA"), /unsupported recipient/);
  assert.equal(parseRecipientsFile(`# one\n\n${recipient}\n# two\n${recipient}\n`).length, 2);
  assert.throws(() => parseRecipientsFile(`${recipient}\nbogus\n`), /line 2/);
  assert.throws(() => parseRecipientsFile("# empty\n"), /no recipients/);
});
