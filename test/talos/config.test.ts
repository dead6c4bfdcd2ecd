import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Hinted } from "../../src/errors.ts";
import {
  checkClientCertificate,
  describeClientCertificate,
  endpointTarget,
  findTalosconfig,
  loadTalosContext,
  parseTalosconfig,
  talosconfigCandidates,
} from "../../src/talos/config.ts";
import { issueCert, makePki, type TestPki } from "../fixtures/pki.ts";
import { talosconfigYaml } from "../fixtures/talos-standin.ts";
import { issueExpiredClientCert } from "./expired-cert.ts";

let dir: string;
let pki: TestPki;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "talos-config-test-"));
  pki = makePki(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("talosconfig", () => {
  test("endpoints get apid's port 50000 unless they name one", () => {
    const cases: [string, string][] = [
      ["10.0.0.1", "10.0.0.1:50000"],
      ["10.0.0.1:50001", "10.0.0.1:50001"],
      ["talos.default", "talos.default:50000"],
      ["https://cp1.example.com", "cp1.example.com:50000"],
      ["fd00::1", "[fd00::1]:50000"],
      ["[fd00::1]", "[fd00::1]:50000"],
      ["[fd00::1]:4000", "[fd00::1]:4000"],
    ];
    for (const [input, want] of cases) assert.equal(endpointTarget(input), want, input);
  });

  test("candidates follow talosctl's order and an explicit path stands alone", () => {
    assert.deepEqual(talosconfigCandidates("/x/config", { TALOSCONFIG: "/env/config" }, "/home/u", "/sa"), [
      "/x/config",
    ]);
    assert.deepEqual(talosconfigCandidates(undefined, { TALOSCONFIG: "/env/config" }, "/home/u", "/sa"), [
      "/env/config",
      "/home/u/.talos/config",
      "/sa/config",
    ]);
    assert.deepEqual(talosconfigCandidates(undefined, { TALOS_HOME: "/th" }, "/home/u", "/sa"), [
      "/th/config",
      "/sa/config",
    ]);
    // A relative TALOS_HOME is ignored, as talosctl does.
    assert.deepEqual(talosconfigCandidates(undefined, { TALOS_HOME: "rel" }, "/home/u", "/sa"), [
      "/home/u/.talos/config",
      "/sa/config",
    ]);
  });

  test("the ServiceAccount mount is found when nothing else exists", async () => {
    const sa = join(dir, "sa");
    mkdirSync(sa);
    writeFileSync(join(sa, "config"), "x");
    const found = await findTalosconfig(talosconfigCandidates(undefined, {}, join(dir, "nohome"), sa));
    assert.equal(found, join(sa, "config"));
    assert.equal(
      await findTalosconfig(talosconfigCandidates(undefined, {}, join(dir, "nohome"), join(dir, "none"))),
      undefined,
    );
  });

  test("reads the current context, or the named one, with PEM decoded", async () => {
    const backup = issueCert(pki, "backup", { cn: "backup", usage: "client", org: "os:etcd:backup" });
    const text =
      talosconfigYaml({
        context: "prod",
        endpoints: ["10.0.0.1", "10.0.0.2"],
        nodes: ["10.0.0.5"],
        caCert: pki.caCert,
        ...backup,
      }) +
      talosconfigYaml({ context: "lab", endpoints: ["192.168.1.1"], caCert: pki.caCert, ...backup })
        .split("\n")
        .slice(2)
        .join("\n");
    const path = join(dir, "talosconfig");
    writeFileSync(path, text);
    const prod = await loadTalosContext(path);
    assert.equal(prod.name, "prod");
    assert.deepEqual(prod.endpoints, ["10.0.0.1", "10.0.0.2"]);
    assert.deepEqual(prod.nodes, ["10.0.0.5"]);
    assert.match(prod.cert.toString(), /BEGIN CERTIFICATE/);
    assert.match(prod.key.toString(), /PRIVATE KEY/);
    const lab = await loadTalosContext(path, "lab");
    assert.deepEqual(lab.endpoints, ["192.168.1.1"]);
    await assert.rejects(loadTalosContext(path, "nope"), (err: Error) => {
      assert.ok(err instanceof Hinted);
      assert.match(err.message, /no context "nope"/);
      assert.match(err.hint, /prod, lab/);
      return true;
    });
  });

  test("errors never contain key material", () => {
    const text =
      "context: a\ncontexts:\n  a:\n    endpoints: [x]\n    ca: bm90LXBlbQ==\n    crt: bm90LXBlbQ==\n    key: c2VjcmV0LWtleS1ieXRlcw==\n";
    assert.throws(
      () => parseTalosconfig(text, "/f"),
      (err: Error) => {
        assert.match(err.message, /ca is not base64-encoded PEM/);
        assert.doesNotMatch(err.message, /c2VjcmV0|secret-key/);
        return true;
      },
    );
    assert.throws(() => parseTalosconfig("contexts: {}\n", "/f"), /names no current context/);
  });

  test("roles come from the certificate's Organization; expired certificates are refused", () => {
    const reader = issueCert(pki, "reader", { cn: "x", usage: "client", org: "os:reader" });
    assert.deepEqual(describeClientCertificate(readFileSync(reader.cert)).roles, ["os:reader"]);
    const none = issueCert(pki, "no-role", { cn: "x", usage: "client" });
    assert.deepEqual(describeClientCertificate(readFileSync(none.cert)).roles, []);
    const expired = issueExpiredClientCert(pki, "expired", "os:admin");
    const info = describeClientCertificate(readFileSync(expired.cert));
    assert.deepEqual(info.roles, ["os:admin"]);
    assert.throws(() => checkClientCertificate(info), /client certificate expired on 2020-02-01/);
    checkClientCertificate(describeClientCertificate(readFileSync(reader.cert)));
  });
});
