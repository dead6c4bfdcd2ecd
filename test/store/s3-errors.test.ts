import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { describeError, Hinted } from "../../src/errors.ts";
import { explainS3Error, isS3NotFound, isTransientS3Error } from "../../src/store/s3-errors.ts";

/** An error shaped like the SDK's service errors. */
function serviceError(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
  });
}

function nodeError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

const ctx = { bucket: "backups", endpoint: "https://s3.example:9000" };

describe("isTransientS3Error", () => {
  test("throttling, 5xx and network errors are retried", () => {
    for (const err of [
      serviceError("SlowDown", 503),
      serviceError("TooManyRequests", 429),
      serviceError("InternalError", 500),
      serviceError("BadGateway", 502),
      serviceError("RequestTimeout", 400),
      nodeError("ECONNRESET"),
      nodeError("ECONNREFUSED"),
      nodeError("EPIPE"),
      Object.assign(new AggregateError([nodeError("ECONNREFUSED")]), {}),
    ]) {
      assert.equal(isTransientS3Error(err), true, String(err));
    }
  });

  test("other 4xx, TLS failures and aborts are not", () => {
    for (const err of [
      serviceError("AccessDenied", 403),
      serviceError("SignatureDoesNotMatch", 403),
      serviceError("NoSuchBucket", 404),
      serviceError("NoSuchKey", 404),
      serviceError("InvalidArgument", 400),
      nodeError("SELF_SIGNED_CERT_IN_CHAIN"),
      nodeError("ENOTFOUND"),
      Object.assign(new Error("aborted"), { name: "AbortError" }),
      new Error("plain"),
    ]) {
      assert.equal(isTransientS3Error(err), false, String(err));
    }
  });
});

describe("isS3NotFound", () => {
  test("a missing key, not a missing bucket", () => {
    assert.equal(isS3NotFound(serviceError("NoSuchKey", 404)), true);
    assert.equal(isS3NotFound(serviceError("NotFound", 404)), true);
    assert.equal(isS3NotFound(serviceError("NoSuchBucket", 404)), false);
    assert.equal(isS3NotFound(serviceError("AccessDenied", 403)), false);
  });
});

describe("explainS3Error", () => {
  const cases: [string, Error, RegExp][] = [
    [
      "wrong secret",
      serviceError("SignatureDoesNotMatch", 403),
      /^S3 rejected the credentials \(SignatureDoesNotMatch\) \(check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY or the profile\)$/,
    ],
    [
      "unknown key id",
      serviceError("InvalidAccessKeyId", 403),
      /^S3 rejected the credentials \(InvalidAccessKeyId\)/,
    ],
    [
      "no credentials",
      Object.assign(new Error("Could not load credentials from any providers"), {
        name: "CredentialsProviderError",
      }),
      /^no S3 credentials found \(set AWS_ACCESS_KEY_ID/,
    ],
    ["missing bucket", serviceError("NoSuchBucket", 404), /^bucket backups does not exist \(create it/],
    [
      "access denied",
      serviceError("AccessDenied", 403),
      /^S3 denied access to bucket backups \(check that the credentials/,
    ],
    ["HEAD 403 without a body", serviceError("Forbidden", 403), /^S3 denied access to bucket backups/],
    [
      "self-signed",
      nodeError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"),
      /^TLS verification of https:\/\/s3\.example:9000 failed: self-signed certificate in certificate chain \(pass --s3-ca FILE with the CA bundle, or --s3-insecure-skip-tls-verify\)$/,
    ],
    [
      "wrong host name",
      nodeError("ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames"),
      /^TLS verification of .* failed: Hostname\/IP does not match/,
    ],
    [
      "refused",
      nodeError("ECONNREFUSED"),
      /^cannot connect to https:\/\/s3\.example:9000: connection refused \(check --s3-endpoint/,
    ],
    [
      "refused, several addresses",
      new AggregateError([nodeError("ECONNREFUSED"), nodeError("ECONNREFUSED")]),
      /^cannot connect to/,
    ],
    [
      "no such host",
      nodeError("ENOTFOUND"),
      /^cannot resolve the host of https:\/\/s3\.example:9000 \(check --s3-endpoint and DNS\)$/,
    ],
    [
      "wrong region",
      serviceError("PermanentRedirect", 301),
      /^bucket backups is in another region \(pass --s3-region/,
    ],
  ];
  for (const [name, err, expected] of cases) {
    test(name, () => {
      const explained = explainS3Error(err, ctx);
      assert.ok(explained instanceof Hinted, "a Hinted error");
      assert.match(describeError(explained), expected);
    });
  }

  test("anything else keeps the SDK's error, with its code and status when the message lacks them", () => {
    const err = serviceError("InvalidArgument", 400, "bad part number");
    const explained = explainS3Error(err, ctx);
    assert.equal(describeError(explained), "InvalidArgument (HTTP 400): bad part number");
    assert.equal(explained.cause, err);
    const plain = new Error("something odd");
    assert.equal(explainS3Error(plain, ctx), plain);
  });
});
