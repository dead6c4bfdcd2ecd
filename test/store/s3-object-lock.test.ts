import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { s3SettingsFromOptions } from "../../src/cli/s3-options.ts";
import { UsageError } from "../../src/errors.ts";
import {
  contentMd5,
  lockHeaders,
  noObjectLockError,
  retainUntil,
  retentionFromHead,
  retentionHeaders,
} from "../../src/store/s3-object-lock.ts";
import { parseObjectLockDays, parseObjectLockMode, resolveS3Settings } from "../../src/store/s3-settings.ts";
import { NO_RETENTION, retentionHold, retentionJson, retentionLabel } from "../../src/store/store.ts";

const DAY = 86_400_000;
const now = new Date("2026-11-30T10:00:00.250Z");

describe("Object Lock headers", () => {
  test("a mode with days: S3's capitals and a date `days` after the write, whole seconds rounded up", () => {
    assert.deepEqual(lockHeaders({ mode: "governance", days: 1 }, now), {
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: new Date("2026-12-01T10:00:01.000Z"),
    });
    assert.deepEqual(lockHeaders({ mode: "compliance", days: 400 }, new Date("2026-01-01T00:00:00Z")), {
      ObjectLockMode: "COMPLIANCE",
      ObjectLockRetainUntilDate: new Date("2027-02-05T00:00:00Z"),
    });
  });

  test("a legal hold alone, or with a mode; nothing asked, nothing sent", () => {
    assert.deepEqual(lockHeaders({ legalHold: true }, now), { ObjectLockLegalHoldStatus: "ON" });
    assert.deepEqual(Object.keys(lockHeaders({ mode: "governance", days: 3, legalHold: true }, now)).sort(), [
      "ObjectLockLegalHoldStatus",
      "ObjectLockMode",
      "ObjectLockRetainUntilDate",
    ]);
    assert.deepEqual(lockHeaders({}, now), {});
  });

  test("the retain-until date is never earlier than asked (boundaries of the rounding)", () => {
    for (const ms of [0, 1, 999, 1000, 1001]) {
      const at = new Date(Date.UTC(2026, 10, 30) + ms);
      const until = retainUntil(2, at).getTime();
      assert.ok(until >= at.getTime() + 2 * DAY && until < at.getTime() + 2 * DAY + 1000, String(ms));
      assert.equal(until % 1000, 0);
    }
  });

  test("a kept retention (rekey) is copied as it is; a past date is dropped, a legal hold never", () => {
    const until = new Date("2026-12-01T10:00:01.000Z");
    assert.deepEqual(retentionHeaders({ mode: "compliance", retainUntil: until, legalHold: true }, now), {
      ObjectLockMode: "COMPLIANCE",
      ObjectLockRetainUntilDate: until,
      ObjectLockLegalHoldStatus: "ON",
    });
    assert.deepEqual(retentionHeaders({ mode: "governance", retainUntil: until, legalHold: false }, now), {
      ObjectLockMode: "GOVERNANCE",
      ObjectLockRetainUntilDate: until,
    });
    const past = new Date(now.getTime() - 1000);
    assert.deepEqual(retentionHeaders({ mode: "governance", retainUntil: past, legalHold: true }, now), {
      ObjectLockLegalHoldStatus: "ON",
    });
    assert.deepEqual(retentionHeaders({ mode: "compliance", retainUntil: now, legalHold: false }, now), {});
    assert.deepEqual(retentionHeaders(NO_RETENTION, now), {});
  });

  test("Content-MD5 is the base64 MD5 of the body (RFC 1864)", () => {
    assert.equal(contentMd5(Buffer.alloc(0)), "1B2M2Y8AsgTpgAmY7PhCfg==");
    assert.equal(contentMd5(Buffer.from("hello\n")), "sZRqySSS0jR8YjW00mERhA==");
  });

  test("the refusal names the bucket and what to do, in one line", () => {
    const err = noObjectLockError("backups", { mode: "governance", days: 1 });
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, "bucket backups has no Object Lock");
    assert.equal(
      err.hint,
      "create it with aws s3api create-bucket --object-lock-enabled-for-bucket, or ask for no object lock",
    );
    assert.match(noObjectLockError("b", { legalHold: true }).hint ?? "", /ask for no legal hold$/);
  });
});

describe("retention as the store contract carries it", () => {
  test("read from a HEAD answer", () => {
    const until = new Date("2027-01-03T00:00:00Z");
    assert.deepEqual(retentionFromHead({ ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: until }), {
      mode: "compliance",
      retainUntil: until,
      legalHold: false,
    });
    assert.deepEqual(retentionFromHead({ ObjectLockLegalHoldStatus: "ON" }), { legalHold: true });
    assert.deepEqual(retentionFromHead({ ObjectLockLegalHoldStatus: "OFF" }), NO_RETENTION);
    assert.deepEqual(
      retentionFromHead({ ObjectLockMode: "GOVERNANCE" }),
      NO_RETENTION,
      "a mode without date",
    );
  });

  test("held until the date (exclusive) and while a legal hold is on; governance counts as held", () => {
    const until = new Date("2027-01-03T12:00:00Z");
    const cases: [Parameters<typeof retentionHold>[0], Date, string | null][] = [
      [
        { mode: "compliance", retainUntil: until, legalHold: false },
        new Date(until.getTime() - 1),
        "object lock compliance until 2027-01-03",
      ],
      [
        { mode: "governance", retainUntil: until, legalHold: false },
        new Date(until.getTime() - 1),
        "object lock governance until 2027-01-03",
      ],
      [{ mode: "compliance", retainUntil: until, legalHold: false }, until, null],
      [{ mode: "compliance", retainUntil: until, legalHold: false }, new Date(until.getTime() + 1), null],
      [{ legalHold: true }, new Date("2099-01-01T00:00:00Z"), "legal hold"],
      [
        { mode: "governance", retainUntil: until, legalHold: true },
        now,
        "object lock governance until 2027-01-03, legal hold",
      ],
      [NO_RETENTION, now, null],
    ];
    for (const [r, at, want] of cases) assert.equal(retentionHold(r, at), want, JSON.stringify([r, at]));
  });

  test("labels and JSON for list and verify", () => {
    const r = {
      mode: "compliance" as const,
      retainUntil: new Date("2027-01-03T10:00:00.000Z"),
      legalHold: true,
    };
    assert.equal(retentionLabel(r), "compliance until 2027-01-03T10:00:00Z, legal hold");
    assert.equal(retentionLabel(NO_RETENTION), "-");
    assert.deepEqual(retentionJson(r), {
      mode: "compliance",
      retainUntil: "2027-01-03T10:00:00.000Z",
      legalHold: true,
    });
    assert.deepEqual(retentionJson(NO_RETENTION), { mode: null, retainUntil: null, legalHold: false });
  });
});

describe("Object Lock settings", () => {
  test("a mode needs its days; days need a mode; a legal hold stands alone", () => {
    assert.deepEqual(resolveS3Settings({ objectLock: { mode: "compliance", days: 30 } }).objectLock, {
      mode: "compliance",
      days: 30,
    });
    assert.deepEqual(resolveS3Settings({ objectLock: { legalHold: true } }).objectLock, { legalHold: true });
    assert.equal(resolveS3Settings({}).objectLock, undefined);
    assert.equal(resolveS3Settings({ objectLock: { legalHold: false } }).objectLock, undefined);
    assert.throws(
      () => resolveS3Settings({ objectLock: { mode: "governance" } }),
      /needs --s3-object-lock-days/,
    );
    assert.throws(() => resolveS3Settings({ objectLock: { days: 3 } }), /needs --s3-object-lock/);
    for (const days of [0, -1, 1.5, 36_501])
      assert.throws(
        () => resolveS3Settings({ objectLock: { mode: "governance", days } }),
        UsageError,
        String(days),
      );
  });

  test("the flags of log and save-config: ETCD_BACKUP_S3_LEGAL_HOLD=false is no hold, a typo is refused", () => {
    assert.equal(s3SettingsFromOptions({}, { ETCD_BACKUP_S3_LEGAL_HOLD: "false" }).objectLock, undefined);
    assert.deepEqual(s3SettingsFromOptions({}, { ETCD_BACKUP_S3_LEGAL_HOLD: "true" }).objectLock, {
      legalHold: true,
    });
    assert.throws(
      () => s3SettingsFromOptions({}, { ETCD_BACKUP_S3_LEGAL_HOLD: "maybe" }),
      /not true or false/,
    );
    assert.deepEqual(
      s3SettingsFromOptions({ s3ObjectLock: "compliance", s3ObjectLockDays: 9 }, {}).objectLock,
      { mode: "compliance", days: 9 },
    );
  });

  test("flag values", () => {
    assert.equal(parseObjectLockMode("GOVERNANCE", "--s3-object-lock"), "governance");
    assert.equal(parseObjectLockMode("compliance", "--s3-object-lock"), "compliance");
    assert.throws(() => parseObjectLockMode("legal", "--s3-object-lock"), /unknown object lock mode legal/);
    assert.equal(parseObjectLockDays("7", "--s3-object-lock-days"), 7);
    for (const bad of ["0", "7d", "1.5", "", "36501"])
      assert.throws(() => parseObjectLockDays(bad, "--s3-object-lock-days"), UsageError, bad);
  });
});
