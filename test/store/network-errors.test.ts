/**
 * The connection-level failures of the S3 and Azure stores in one place (src/store/network-errors.ts): every TLS
 * verification code is one line with the store's CA hint and is never retried; refused, unresolved and out-of-reach
 * endpoints are one line each, in the store's own words (its endpoint flag).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { explainAzureError, isTransientAzureError } from "../../src/store/azure-errors.ts";
import { TLS_VERIFICATION_CODES } from "../../src/store/network-errors.ts";
import { explainS3Error, isTransientS3Error } from "../../src/store/s3-errors.ts";

function nodeError(code: string, message = `${code} from the socket`): Error {
  return Object.assign(new Error(message), { code });
}

const s3 = (err: Error) => explainS3Error(err, { bucket: "backups", endpoint: "https://s3.example:9000" });
const azure = (err: Error) =>
  explainAzureError(err, {
    account: "acct",
    container: "backups",
    endpoint: "https://acct.blob.example",
    auth: "shared key",
  });
const line = (err: Error) => `${err.message} (${(err as { hint?: string }).hint})`;

describe("connection failures, said once for every store", () => {
  test("every TLS verification code: one line with the store's CA hint, never retried", () => {
    assert.ok(TLS_VERIFICATION_CODES.size >= 12);
    for (const code of TLS_VERIFICATION_CODES) {
      const err = nodeError(code, `${code}: the certificate did not verify`);
      assert.equal(
        line(s3(err)),
        `TLS verification of https://s3.example:9000 failed: ${code}: the certificate did not verify ` +
          "(pass --s3-ca FILE with the CA bundle, or --s3-insecure-skip-tls-verify)",
      );
      assert.match(
        line(azure(err)),
        new RegExp(
          `^TLS verification of https://acct\\.blob\\.example failed: ${code}: .*\\(check --azure-endpoint; `,
        ),
      );
      assert.equal(isTransientS3Error(err), false, `S3 retried ${code}`);
      assert.equal(isTransientAzureError(err), false, `Azure retried ${code}`);
    }
  });

  test("refused and unresolved: one line naming the endpoint and the store's own flag; both retried", () => {
    assert.equal(
      line(s3(nodeError("ECONNREFUSED"))),
      "cannot connect to https://s3.example:9000: connection refused (check --s3-endpoint and that the server runs)",
    );
    assert.equal(
      line(azure(nodeError("ECONNREFUSED"))),
      "cannot connect to https://acct.blob.example: connection refused (check --azure-endpoint and that the service runs)",
    );
    for (const explain of [s3, azure]) {
      const unresolved = explain(nodeError("ENOTFOUND"));
      assert.match(unresolved.message, /^cannot resolve the host of https:\/\/\S+$/);
    }
    for (const code of ["ECONNREFUSED", "ECONNRESET", "EAI_AGAIN", "ETIMEDOUT"]) {
      assert.equal(isTransientS3Error(nodeError(code)), true, `S3 ${code}`);
      assert.equal(isTransientAzureError(nodeError(code)), true, `Azure ${code}`);
    }
  });
});
