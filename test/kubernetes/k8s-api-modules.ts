import { execFileSync } from "node:child_process";
import { join } from "node:path";

/**
 * The k8s.io API modules in the Go module cache (downloaded through the Go module proxy by
 * scripts/fetch-k8s-api.sh, at the release the schema was generated from), for tests that read their
 * testdata fixtures. Nothing of them is committed. Without Go or the modules: in CI (CI=true) the test
 * fails with the reason; elsewhere it is skipped with the reason printed.
 */
export function k8sApiModules(): { dirs: Map<string, string> } | { skip: string } {
  try {
    const out = execFileSync(join(import.meta.dirname, "..", "..", "scripts", "fetch-k8s-api.sh"), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 300_000,
    });
    return {
      dirs: new Map(
        out
          .trim()
          .split("\n")
          .map((l) => l.split("=") as [string, string]),
      ),
    };
  } catch (err) {
    const why = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    const reason = `the k8s.io API modules are not available (${why}); run scripts/fetch-k8s-api.sh`;
    if (process.env.CI === "true") throw new Error(reason);
    return { skip: reason };
  }
}
