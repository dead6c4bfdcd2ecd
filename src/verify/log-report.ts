/** `verify --log`'s text: what was checked, then each problem with the chain and object it concerns. */
import type { LogVerification } from "../point-in-time/verify-log.ts";

export function logVerificationOk(v: LogVerification): boolean {
  return !v.findings.some((f) => f.severity === "error");
}

export function renderLogVerification(v: LogVerification, location: string): string {
  const lines = [
    `revision log in ${location}: ${v.chains} chain(s), ${v.segments} segment(s), ${v.revisions} revisions checked`,
  ];
  if (v.chains === 0) lines.push("  no revision log here (run `etcd-backup log` beside the full backups)");
  for (const f of v.findings) {
    lines.push(
      `  ${f.severity === "error" ? "FAILED" : "warning"} cluster ${f.cluster}, chain ${f.chain}: ${f.key ? `${f.key}: ` : ""}${f.message}`,
    );
  }
  const errors = v.findings.filter((f) => f.severity === "error").length;
  lines.push(
    errors === 0
      ? "log verification passed: every chain is contiguous and every segment matches its manifest"
      : `log verification FAILED: ${errors} problem(s)`,
  );
  return `${lines.join("\n")}\n`;
}
