import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { renderObjects, toJson, toYaml } from "../../src/kubernetes/render.ts";

/**
 * `get` prints YAML as kubectl does: the real kubectl (offline, `create ... --dry-run=client`) writes the
 * same object as JSON and as YAML; our YAML of its JSON must be the same bytes. The objects carry the
 * strings YAML 1.1 readers mistake ("on", timestamps, octal-looking numbers), multi-line text and lists.
 */

function hasKubectl(): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI === "true")
      throw new Error("kubectl is not installed (scripts/install-deps.sh installs it)");
    return false;
  }
}

const kubectl = hasKubectl();

const objects: [string, string[]][] = [
  ["deployment", ["create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=80"]],
  [
    "configmap",
    [
      "create",
      "configmap",
      "cm",
      "--from-literal=a=on",
      "--from-literal=b=2008-01-01T01:01:01Z",
      "--from-literal=c=multi\nline\n",
      "--from-literal=d=0755",
      "--from-literal=e=yes",
      "--from-literal=f=",
      "--from-literal=g=1e3",
      "--from-literal=h=~",
      "--from-literal=i=[a]",
      "--from-literal=j=1:20",
      "--from-literal=k=- x",
      "--from-literal=l=0x1F",
      "--from-literal=m=.5",
      "--from-literal=n=Null",
      "--from-literal=o=plain words: here",
    ],
  ],
  ["secret", ["create", "secret", "generic", "db", "--from-literal=password=s3cr3t", "--type=Opaque"]],
  ["cronjob", ["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"]],
  ["quota", ["create", "quota", "q", "--hard=cpu=1,memory=1G,pods=2"]],
  [
    "poddisruptionbudget",
    ["create", "poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=50%"],
  ],
  ["priorityclass", ["create", "priorityclass", "high", "--value=1000", "--description=on"]],
  ["service", ["create", "service", "clusterip", "web", "--tcp=80:8080,443:8443"]],
  ["ingress", ["create", "ingress", "web", "--rule=example.com/*=web:80,tls=web-tls"]],
];

describe("YAML exactly as kubectl writes it", { skip: kubectl ? false : "kubectl is not installed" }, () => {
  for (const [name, args] of objects) {
    test(name, () => {
      const run = (output: string) =>
        execFileSync("kubectl", [...args, "--dry-run=client", "-o", output], { encoding: "utf8" });
      const json = JSON.parse(run("json"));
      assert.equal(toYaml(json), run("yaml"));
    });
  }
});

describe("JSON and lists", () => {
  test("keys sorted at every level, two-space indent, bigints exact; several objects as a List or documents", () => {
    const o = { kind: "X", apiVersion: "v1", metadata: { name: "a", generation: 2n ** 63n - 1n } };
    assert.equal(
      toJson(o),
      '{\n  "apiVersion": "v1",\n  "kind": "X",\n  "metadata": {\n    "generation": 9223372036854775807,\n    "name": "a"\n  }\n}\n',
    );
    assert.equal(renderObjects([{ a: 1 }, { b: 2 }], "yaml"), "a: 1\n---\nb: 2\n");
    assert.deepEqual(JSON.parse(renderObjects([{ a: 1 }], "json")), {
      apiVersion: "v1",
      items: [{ a: 1 }],
      kind: "List",
      metadata: { resourceVersion: "" },
    });
  });
});
