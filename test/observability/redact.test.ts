import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Logger } from "pino";
import { generateIdentity } from "../../src/age/index.ts";
import { describeError, errorChain, Hinted } from "../../src/errors.ts";
import { processRedactor, REDACTED, Redactor } from "../../src/observability/redact.ts";
import { EventRecorder } from "../../src/operator/events.ts";
import type { Kube } from "../../src/operator/kube.ts";

// A fixed, made-up key: the redactor works on the text's shape, never on its validity.
const AGE_KEY = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSKHLZ2X";
const PEM = [
  "-----BEGIN EC PRIVATE KEY-----",
  "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5GHjp7ePTOpU+oAoGCCqGSM49",
  "AwEHoUQDQgAE5rE0k6uvVJ2Y8Bw+K6xl1d0Dqv3f2m2Tn2r8wzJ1Yb2pyN8c0Qwr",
  "-----END EC PRIVATE KEY-----",
].join("\n");
const JWT =
  "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLWJ5dGVz";

describe("shapes: removed without being registered", () => {
  const r = new Redactor();
  // [text, what must not survive, what must survive]
  const cases: [string, string[], string[]][] = [
    [`invalid recipient "${AGE_KEY}"`, ["QYQSZ", "KHLZ2X"], ['invalid recipient "']],
    // A message that shortens its value must not leak the first characters either.
    [`invalid recipient "${AGE_KEY.slice(0, 20)}…"`, ["AGE-SECRET-KEY-1QYQS", "1QYQS"], ["…"]],
    [`bad line ${AGE_KEY.toLowerCase()}`, ["qyqszqgp"], ["bad line "]],
    ["AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQQQPQ9SNZ", ["QQQQQQQQQQQQPQ9SNZ"], []],
    [PEM, ["MHcCAQEEIBkg4LVWM9", "AwEHoUQDQgAE"], []],
    // A PEM cut short (an Event's 1024 characters) is removed to the end, or to the end of a JSON string.
    [`key: ${PEM.slice(0, 80)}`, ["MHcCAQ"], ["key: "]],
    [JSON.stringify({ err: `${PEM.slice(0, 80)}`, next: "kept" }), ["MHcCAQ"], ['"next":"kept"']],
    [
      "no etcd endpoint served a snapshot (http://user:PASSWORD@127.0.0.1:1: Name resolution failed for target dns:user:PASSWORD@127.0.0.1:1)",
      ["PASSWORD"],
      ["http://user:", "@127.0.0.1:1", "dns:user:"],
    ],
    ["s3://AKIA:wJalr%2FXUtn@bucket/prefix", ["wJalr"], ["s3://AKIA:"]],
    ["Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789", ["abcdefghijklmnop"], ["Bearer "]],
    ["Authorization: Basic dXNlcjpwYXNzd29yZA==", ["dXNlcjpwYXNzd29yZA"], ["Basic "]],
    [`token ${JWT}`, ["eyJhbGci", "c2lnbmF0dXJl"], ["token "]],
    [
      "session IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ",
      ["IQoJb3JpZ2lu", "wEaCXVz"],
      ["session "],
    ],
    ["AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY", ["wJalrXUtn"], ["AWS_SECRET_ACCESS_KEY="]],
    ["aws_session_token = FQoDYXdzEJr", ["FQoDYXdzEJr"], []],
  ];
  for (const [text, gone, kept] of cases) {
    test(text.slice(0, 60), () => {
      const clean = r.redact(text);
      for (const g of gone) assert.ok(!clean.includes(g), `${JSON.stringify(g)} survived in ${clean}`);
      for (const k of kept) assert.ok(clean.includes(k), `${JSON.stringify(k)} lost in ${clean}`);
      assert.ok(clean.includes(REDACTED));
    });
  }

  test("a PEM key encoded in base64 (talosconfig `key:`, kubeconfig `client-key-data:`); a certificate stays", () => {
    const key = Buffer.from(`${PEM}\n`).toString("base64");
    const cert = Buffer.from(
      "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
    ).toString("base64");
    assert.equal(r.redact(`    key: ${key}\n    crt: ${cert}`), `    key: ${REDACTED}\n    crt: ${cert}`);
  });

  test("a real generated identity, not even 4 characters of its key part", () => {
    const id = generateIdentity();
    const secretPart = id.identity.slice("AGE-SECRET-KEY-1".length);
    const clean = r.redact(`identity ${id.identity}, truncated ${id.identity.slice(0, 20)}…`);
    for (let i = 0; i + 4 <= secretPart.length; i++) {
      assert.ok(
        !clean.includes(secretPart.slice(i, i + 4)),
        `${secretPart.slice(i, i + 4)} survived: ${clean}`,
      );
    }
    assert.equal(r.redact(`recipient ${id.recipient}`), `recipient ${id.recipient}`, "public keys stay");
  });
});

describe("ordinary text is left alone", () => {
  const r = new Redactor();
  for (const text of [
    "no etcd endpoint served a snapshot (http://127.0.0.1:2379: connect ECONNREFUSED 127.0.0.1:2379)",
    "https://127.0.0.1:9000/bucket/prod-2026-11-23T20:12:59Z.snap.zst.age",
    "invalid configuration: 1 problem: --password: needs --user",
    "Bearer authentication failed",
    "stored s3://bucket/prefix/prod-2026-11-23T20:12:59Z.snap.zst.age (age-encrypted)",
    "recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
  ]) {
    test(text.slice(0, 60), () => assert.equal(r.redact(text), text));
  }
});

describe("registered values", () => {
  test("raw, trimmed, JSON-escaped and HTML-escaped forms; short values are not registered", () => {
    const r = new Redactor().add(' pa"ss<&>word\n', "abc");
    const clean = r.redact(
      [
        'raw pa"ss<&>word',
        JSON.stringify({ msg: 'pa"ss<&>word' }),
        "html pa&quot;ss&lt;&amp;&gt;word",
        "abc stays",
      ].join("\n"),
    );
    assert.ok(!clean.includes("ss<&>"), clean);
    assert.ok(!clean.includes('ss\\"'), clean);
    assert.ok(!clean.includes("ss&lt;"), clean);
    assert.ok(clean.includes("abc stays"));
  });

  test("each long line of a multi-line secret is a secret on its own", () => {
    const r = new Redactor().add(PEM.replace(/EC PRIVATE KEY/g, "SOMETHING"));
    const clean = r.redact("line: AwEHoUQDQgAE5rE0k6uvVJ2Y8Bw+K6xl1d0Dqv3f2m2Tn2r8wzJ1Yb2pyN8c0Qwr");
    assert.equal(clean, `line: ${REDACTED}`);
  });

  test("addFromEnv: secret variables, ETCDCTL_USER's password, URL passwords in any variable", () => {
    const r = new Redactor().addFromEnv({
      AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG",
      AWS_SESSION_TOKEN: "tok-123456",
      ETCDCTL_PASSWORD: "etcd-pass",
      ETCDCTL_USER: "root:hunter22",
      ETCDCTL_ENDPOINTS: "http://u:p%40ss@127.0.0.1:2379",
      HOME: "/root",
    });
    const clean = r.redact("wJalrXUtnFEMI/K7MDENG tok-123456 etcd-pass hunter22 p@ss p%40ss /root");
    assert.equal(clean, `${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} /root`);
  });

  test("addFromArgv: --password (both forms), --user name:password, URL passwords", () => {
    const r = new Redactor().addFromArgv([
      "node",
      "main.js",
      "save",
      "--password",
      "pw-one",
      "--password=pw-two",
      "--user",
      "root:pw-three",
      "--endpoints",
      "http://u:pw-four@127.0.0.1:1",
      "--cluster",
      "prod",
    ]);
    const clean = r.redact("pw-one pw-two pw-three pw-four root prod");
    assert.equal(clean, `${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} root prod`);
  });
});

describe("error lines", () => {
  test("describeError and errorChain pass the process's redactor: causes from libraries may echo secrets", () => {
    processRedactor.add("Reg1stered-Pw");
    const err = new Hinted("cannot connect", "check --endpoints", {
      cause: new Error(`dial http://u:Url-Pw-77@127.0.0.1:1 with Reg1stered-Pw\n${PEM}`),
    });
    const line = describeError(err);
    for (const s of ["Url-Pw-77", "Reg1stered-Pw", "MHcCAQ", "AwEHoUQ"]) assert.ok(!line.includes(s), line);
    assert.match(
      line,
      /^cannot connect: dial http:\/\/u:\[REDACTED\]@127\.0\.0\.1:1 with \[REDACTED\] \[REDACTED\] \(check --endpoints\)$/,
    );
    assert.ok(errorChain(err).every((m) => !m.includes("Url-Pw-77") && !m.includes("MHcCAQ")));
  });
});

describe("operator Events", () => {
  test("every Event message passes the redactor before it is sent", async () => {
    const sent: { message: string }[] = [];
    const kube = { createEvent: async (_ns: string, body: { message: string }) => void sent.push(body) };
    const redactor = new Redactor().add("secret-from-a-Secret-42");
    const log = { warn: () => {} };
    const recorder = new EventRecorder(
      kube as unknown as Kube,
      "test",
      log as unknown as Logger,
      undefined,
      redactor,
    );
    const target = { apiVersion: "v1", kind: "EtcdBackup", metadata: { name: "b", namespace: "ns" } };
    await recorder.record(
      target,
      "Warning",
      "BackupFailed",
      `cannot snapshot etcd at http://u:pw-in-url@10.0.0.1:2379: secret-from-a-Secret-42 ${PEM}`,
    );
    assert.equal(sent.length, 1);
    const message = sent[0]!.message;
    for (const s of ["pw-in-url", "secret-from-a-Secret-42", "MHcCAQ", "AwEHoUQ"]) {
      assert.ok(!message.includes(s), message);
    }
    assert.match(message, /^cannot snapshot etcd at http:\/\/u:\[REDACTED\]@10\.0\.0\.1:2379: \[REDACTED\]/);
  });
});
