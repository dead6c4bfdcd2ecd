import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestPki } from "../fixtures/pki.ts";

/**
 * Issues a client certificate that expired in 2020, signed by the test CA, with `O=<org>`. Made with `openssl ca`
 * (which takes explicit start and end dates on OpenSSL 3.0; `x509 -not_after` needs 3.4).
 */
export function issueExpiredClientCert(
  pki: TestPki,
  name: string,
  org: string,
): { cert: string; key: string } {
  const dir = join(pki.dir, `${name}-ca`);
  mkdirSync(join(dir, "new"), { recursive: true });
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "serial"), "1000\n");
  const conf = join(dir, "ca.cnf");
  writeFileSync(
    conf,
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "serial = $dir/serial",
      "new_certs_dir = $dir/new",
      "default_md = sha256",
      "policy = any",
      "unique_subject = no",
      "copy_extensions = none",
      "x509_extensions = ext",
      "[any]",
      "commonName = supplied",
      "organizationName = optional",
      "[ext]",
      "basicConstraints = CA:FALSE",
      "keyUsage = digitalSignature",
      "extendedKeyUsage = clientAuth",
    ].join("\n"),
  );
  const key = join(pki.dir, `${name}.key`);
  const csr = join(pki.dir, `${name}.csr`);
  const cert = join(pki.dir, `${name}.crt`);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key]);
  run(["req", "-new", "-key", key, "-subj", `/CN=${name}/O=${org}`, "-out", csr]);
  run([
    "ca",
    "-batch",
    "-config",
    conf,
    "-in",
    csr,
    "-out",
    cert,
    "-cert",
    pki.caCert,
    "-keyfile",
    pki.caKey,
    "-startdate",
    "20200101000000Z",
    "-enddate",
    "20200201000000Z",
    "-notext",
  ]);
  return { cert, key };
}
