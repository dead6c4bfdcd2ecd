import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { makeThrowawayPki } from "../../src/restore/throwaway-pki.ts";

test("the throwaway PKI: a CA, and certificates for 127.0.0.1 it signed, that openssl accepts", () => {
  const pki = makeThrowawayPki();
  const ca = new X509Certificate(pki.caCert);
  const server = new X509Certificate(pki.serverCert);
  const client = new X509Certificate(pki.clientCert);
  assert.equal(ca.ca, true);
  assert.equal(ca.verify(ca.publicKey), true, "self-signed");
  for (const leaf of [server, client]) {
    assert.equal(leaf.ca, false);
    assert.equal(leaf.verify(ca.publicKey), true);
    assert.equal(leaf.checkIssued(ca), true);
    assert.equal(leaf.checkIP("127.0.0.1"), "127.0.0.1");
    assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    assert.ok(new Date(leaf.validFrom) < new Date() && new Date() < new Date(leaf.validTo));
  }
  assert.equal(server.checkPrivateKey(createPrivateKey(pki.serverKey)), true);
  assert.equal(client.checkPrivateKey(createPrivateKey(pki.clientKey)), true);
  assert.equal(
    server.verify(new X509Certificate(makeThrowawayPki().caCert).publicKey),
    false,
    "one CA per run",
  );

  // The real tool agrees, with the purposes etcd checks.
  const dir = mkdtempSync(join(tmpdir(), "etcd-backup-pki-test-"));
  try {
    for (const [name, pem] of Object.entries(pki)) writeFileSync(join(dir, name), pem);
    const verify = (purpose: string, cert: string) =>
      execFileSync(
        "openssl",
        ["verify", "-purpose", purpose, "-CAfile", join(dir, "caCert"), join(dir, cert)],
        {
          encoding: "utf8",
        },
      );
    assert.match(verify("sslserver", "serverCert"), /: OK/);
    assert.match(verify("sslclient", "serverCert"), /: OK/, "etcd also dials its peer port with it");
    assert.match(verify("sslclient", "clientCert"), /: OK/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
