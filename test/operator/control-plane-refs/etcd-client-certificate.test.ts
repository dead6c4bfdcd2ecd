import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  EtcdCaProblem,
  issueEtcdClientCertificate,
} from "../../../src/operator/control-plane-refs/etcd-client-certificate.ts";
import { makePki } from "../../fixtures/pki.ts";

/** openssl makes the CAs (EC P-256 as makePki does, and RSA 2048 as kubeadm does); openssl verifies our certificate. */
describe("etcd client certificate signed by a cluster's etcd CA", () => {
  const dir = mkdtempSync(join(tmpdir(), "etcd-client-cert-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ec = makePki(dir, "ec");
  const rsaKey = join(dir, "rsa.key");
  const rsaCert = join(dir, "rsa.crt");
  execFileSync("openssl", ["genrsa", "-out", rsaKey, "2048"], { stdio: "ignore" });
  execFileSync(
    "openssl",
    ["req", "-x509", "-new", "-key", rsaKey, "-subj", "/CN=etcd-ca", "-days", "3", "-out", rsaCert],
    { stdio: "ignore" },
  );

  for (const [name, certPath, keyPath] of [
    ["EC P-256", ec.caCert, ec.caKey],
    ["RSA 2048", rsaCert, rsaKey],
  ] as const) {
    it(`${name} CA: openssl verifies the chain for client auth; the key pairs with the certificate`, () => {
      const issued = issueEtcdClientCertificate(readFileSync(certPath), readFileSync(keyPath));
      const cert = new X509Certificate(issued.certPem);
      assert.equal(cert.subject, "CN=etcd-backup");
      assert.equal(cert.ca, false);
      assert.ok(cert.verify(new X509Certificate(readFileSync(certPath)).publicKey));
      assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
      assert.ok(cert.checkPrivateKey(createPrivateKey(issued.keyPem)));
      const file = join(dir, `${name.replace(/\W/g, "")}.crt`);
      writeFileSync(file, issued.certPem);
      const out = execFileSync("openssl", ["verify", "-CAfile", certPath, "-purpose", "sslclient", file], {
        encoding: "utf8",
      });
      assert.match(out, /: OK/);
      const hours = (Date.parse(cert.validTo) - Date.now()) / 3_600_000;
      assert.ok(hours > 0.9 && hours <= 1, `valid for about an hour, got ${hours}`);
    });
  }

  it("says what is wrong with the CA in one line", () => {
    const problem = (cert: Buffer, key: Buffer) => {
      try {
        issueEtcdClientCertificate(cert, key);
      } catch (err) {
        assert.ok(err instanceof EtcdCaProblem);
        return err.message;
      }
      assert.fail("no problem found");
    };
    assert.equal(problem(Buffer.from("junk"), readFileSync(ec.caKey)), "tls.crt is not a PEM certificate");
    assert.equal(problem(readFileSync(ec.caCert), Buffer.from("junk")), "tls.key is not a PEM private key");
    assert.equal(problem(readFileSync(ec.caCert), readFileSync(rsaKey)), "tls.key is not the key of tls.crt");
    assert.match(
      problem(readFileSync(ec.clientCert), readFileSync(ec.clientKey)),
      /tls\.crt is not a CA certificate/,
    );
  });
});
