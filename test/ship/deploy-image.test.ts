/**
 * deploy/ names the image in one place: every manifest says `image: etcd-backup`, every kustomization that
 * holds a workload includes the deploy/image component, and rendering (kubectl's built-in kustomize) gives the
 * image that component sets, for each of them. The Helm chart uses its `image` value, defaulting to its appVersion.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";

const DEPLOY = join(import.meta.dirname, "..", "..", "deploy");
const KUSTOMIZATIONS = ["kustomize/cronjob", "kustomize/daemon", "talos", "operator"];

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "helm" ? [] : yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

function configuredImage(): string {
  const component = parse(readFileSync(join(DEPLOY, "image", "kustomization.yaml"), "utf8"));
  assert.equal(component.kind, "Component");
  const [entry] = component.images;
  assert.equal(entry.name, "etcd-backup");
  return `${entry.newName}:${entry.newTag}`;
}

test("every image line in deploy/ (outside the Helm chart) is the placeholder the component replaces", () => {
  const lines = yamlFiles(DEPLOY).flatMap((file) =>
    readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => /^\s*image:/.test(l))
      .map((l) => `${relative(DEPLOY, file)}: ${l.trim().replace(/\s+#.*$/, "")}`),
  );
  assert.ok(lines.length >= 4, lines.join("\n"));
  assert.deepEqual(
    lines.filter((l) => !l.endsWith("image: etcd-backup")),
    [],
  );
  assert.equal(
    configuredImage().split(":").at(-1),
    JSON.parse(readFileSync(join(DEPLOY, "..", "package.json"), "utf8")).version,
  );
});

const kubectl = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
test("each kustomization renders the image deploy/image sets", {
  skip: kubectl ? false : "kubectl is not installed",
}, () => {
  const image = configuredImage();
  for (const dir of KUSTOMIZATIONS) {
    const rendered = execFileSync("kubectl", ["kustomize", join(DEPLOY, dir)], { encoding: "utf8" });
    const images = [...rendered.matchAll(/^\s*image:\s*(\S+)/gm)].map((m) => m[1]);
    assert.ok(images.length > 0, `${dir}: no image`);
    assert.deepEqual([...new Set(images)], [image], dir);
  }
});

test("the Helm chart's image tag defaults to its appVersion", () => {
  const chart = join(DEPLOY, "helm", "etcd-backup");
  assert.equal(parse(readFileSync(join(chart, "values.yaml"), "utf8")).image.tag, "");
  for (const t of ["cronjob.yaml", "deployment.yaml"]) {
    assert.match(
      readFileSync(join(chart, "templates", t), "utf8"),
      /\.Values\.image\.tag \| default \.Chart\.AppVersion/,
    );
  }
});
