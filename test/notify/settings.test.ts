/**
 * Notification settings through the one configuration path: the daemon's YAML file, its environment and its
 * flags give the same job configuration; a bad receiver is refused (exit 2) by its number, never echoed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readSettingsFile } from "../../src/config/file.ts";
import { parseDaemonConfig } from "../../src/config/schema.ts";
import { runCli } from "../fixtures/cli.ts";

const work = mkdtempSync(join(tmpdir(), "etcd-backup-notify-settings-"));
after(() => rmSync(work, { recursive: true, force: true }));

const base = { schedule: "0 * * * *", to: "/backups", encrypt: false };

test("YAML (typed) and environment (strings) mean the same notification settings", async () => {
  const file = join(work, "daemon.yaml");
  writeFileSync(
    file,
    [
      "notify:",
      "  - https://hooks.example.com/services/T1/B2/abcdefghijklmnopqrstuvwx",
      "  - slack+https://chat.example.com/hooks/zyxwvutsrqponmlkjihgfedcba",
      "notify-on: [success, failure, stale]",
      "notify-format: json",
      "notify-stale-after: 3h",
    ].join("\n"),
  );
  const fromFile = parseDaemonConfig({ ...base, ...(await readSettingsFile(file)) }, {});
  const fromEnv = parseDaemonConfig(
    {
      ...base,
      notify:
        "https://hooks.example.com/services/T1/B2/abcdefghijklmnopqrstuvwx,slack+https://chat.example.com/hooks/zyxwvutsrqponmlkjihgfedcba",
      notifyOn: "success,failure,stale",
      notifyFormat: "json",
      notifyStaleAfter: "3h",
    },
    {},
  );
  assert.deepEqual(fromFile.job.notify, fromEnv.job.notify);
  assert.deepEqual(fromFile.job.notify, {
    urls: [
      "https://hooks.example.com/services/T1/B2/abcdefghijklmnopqrstuvwx",
      "slack+https://chat.example.com/hooks/zyxwvutsrqponmlkjihgfedcba",
    ],
    format: "json",
    on: ["success", "failure", "stale"],
    staleAfterMs: 3 * 3_600_000,
  });
  // Defaults: failure only, json, no stale span (the daemon uses twice its interval).
  assert.deepEqual(parseDaemonConfig(base, {}).job.notify, { urls: [], format: "json", on: ["failure"] });
});

test("CLI: a bad --notify is exit 2, named by its number, the value never echoed", async () => {
  const secret = "tok-0123456789abcdefghijklmnop";
  const r = await runCli(["daemon", "--schedule", "0 * * * *", "--to", work, "--no-encrypt"], {
    env: { ETCD_BACKUP_NOTIFY: `https://ok.example/a,mailto:ops@${secret}.example` },
  });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--notify #2: must be an http:\/\/ or https:\/\/ URL/);
  assert.ok(!r.stderr.includes(secret), r.stderr);
  const onWrong = await runCli(
    ["daemon", "--schedule", "0 * * * *", "--to", work, "--no-encrypt", "--notify-on", "always"],
    {},
  );
  assert.equal(onWrong.code, 2);
  assert.match(onWrong.stderr, /--notify-on: use success, failure and\/or stale/);
});
