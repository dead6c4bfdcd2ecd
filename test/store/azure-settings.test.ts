import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { azureSettingsFromOptions } from "../../src/cli/azure-options.ts";
import { describeError, UsageError } from "../../src/errors.ts";
import { Redactor } from "../../src/observability/redact.ts";
import { AzureBlobStore } from "../../src/store/azure-blob.ts";
import {
  azureSecretsFromEnv,
  azureSettingsFromEnv,
  parseAzureDestination,
  parseConnectionString,
  resolveAzureSettings,
} from "../../src/store/azure-settings.ts";
import { openStore } from "../../src/store/open.ts";

const KEY = Buffer.from("an account key of sixty-four bytes, as Azure issues them........").toString(
  "base64",
);
const SAS =
  "sv=2025-01-05&sr=c&sp=racwdl&se=2027-01-01T00%3A00%3A00Z&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789%2BAbC%3D";

describe("Azure settings", () => {
  test("azblob://container/prefix is parsed; bad containers are usage errors", () => {
    assert.deepEqual(parseAzureDestination("azblob://backups/prod/etcd/"), {
      container: "backups",
      prefix: "prod/etcd",
    });
    assert.deepEqual(parseAzureDestination("azblob://backups"), { container: "backups", prefix: "" });
    for (const bad of ["azblob://", "azblob://Backups", "azblob://a", "azblob://a--b", "azblob://b/x//y"]) {
      assert.throws(() => parseAzureDestination(bad), UsageError, bad);
    }
  });

  test("the account: the setting, the connection string, then the emulator endpoint's path", () => {
    assert.equal(resolveAzureSettings({ account: "acct1" }).endpoint, "https://acct1.blob.core.windows.net");
    const emulator = resolveAzureSettings({ endpoint: "http://127.0.0.1:10000/devstoreaccount1/" });
    assert.equal(emulator.account, "devstoreaccount1");
    assert.equal(emulator.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    const cs = resolveAzureSettings(
      {},
      {
        connectionString: `DefaultEndpointsProtocol=https;AccountName=prod1;AccountKey=${KEY};EndpointSuffix=core.usgovcloudapi.net`,
      },
    );
    assert.equal(cs.account, "prod1");
    assert.equal(cs.endpoint, "https://prod1.blob.core.usgovcloudapi.net");
    assert.deepEqual(cs.auth, { kind: "shared key", accountKey: KEY });
    assert.throws(() => resolveAzureSettings({}), /no Azure storage account given/);
    assert.throws(() => resolveAzureSettings({ account: "Not_Valid" }), /invalid Azure storage account name/);
  });

  test("credentials: key, then SAS, then the default credential chain; the secrets are reported for the redactor", () => {
    assert.deepEqual(resolveAzureSettings({ account: "a1b" }).auth, { kind: "default credential" });
    const sas = resolveAzureSettings({ account: "a1b" }, { sasToken: `?${SAS}` });
    assert.deepEqual(sas.auth, { kind: "sas", sasToken: SAS });
    assert.deepEqual(sas.secrets, [`?${SAS}`]);
    const both = resolveAzureSettings({ account: "a1b" }, { accountKey: KEY, sasToken: SAS });
    assert.equal(both.auth.kind, "shared key");
    const dir = mkdtempSync(join(tmpdir(), "azure-settings-"));
    try {
      writeFileSync(join(dir, "key"), `${KEY}\n`);
      writeFileSync(join(dir, "sas"), `${SAS}\n`);
      const fromFile = resolveAzureSettings({ account: "a1b", accountKeyFile: join(dir, "key") });
      assert.deepEqual(fromFile.auth, { kind: "shared key", accountKey: KEY });
      assert.deepEqual(fromFile.secrets, [KEY]);
      assert.deepEqual(resolveAzureSettings({ account: "a1b", sasTokenFile: join(dir, "sas") }).auth, {
        kind: "sas",
        sasToken: SAS,
      });
      assert.throws(
        () => resolveAzureSettings({ account: "a1b", accountKeyFile: join(dir, "missing") }),
        /cannot read .*missing \(ENOENT\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a malformed key, SAS or connection string is refused without echoing it", () => {
    const notBase64 = "not base64 at all: secret!";
    const e1 = (() => {
      try {
        resolveAzureSettings({ account: "a1b" }, { accountKey: notBase64 });
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e1 instanceof UsageError);
    assert.ok(!describeError(e1).includes(notBase64));
    assert.throws(
      () => resolveAzureSettings({ account: "a1b" }, { sasToken: "sv=2025&sp=r" }),
      /no signature/,
    );
    const cs = "this is not a connection string but has AccountKey inside";
    assert.throws(
      () => parseConnectionString(cs),
      (err: unknown) => err instanceof UsageError && !err.message.includes(cs),
    );
    assert.throws(
      () => resolveAzureSettings({ endpoint: `https://a1b.blob.core.windows.net/?${SAS}` }),
      /must not carry a query/,
    );
  });

  test("UseDevelopmentStorage=true means Azurite's default account and port", () => {
    const cs = parseConnectionString("UseDevelopmentStorage=true");
    assert.equal(cs.account, "devstoreaccount1");
    assert.equal(cs.blobEndpoint, "http://127.0.0.1:10000/devstoreaccount1");
  });

  test("environment and flags: flags win, secrets come from the az CLI's variable names", () => {
    const env = {
      AZURE_STORAGE_ACCOUNT: "envacct",
      ETCD_BACKUP_AZURE_ENDPOINT: "http://127.0.0.1:10000/envacct",
      ETCD_BACKUP_AZURE_BLOCK_SIZE: "4",
      ETCD_BACKUP_AZURE_CONCURRENCY: "2",
      AZURE_STORAGE_KEY: KEY,
      AZURE_STORAGE_SAS_TOKEN: SAS,
    };
    assert.deepEqual(azureSettingsFromEnv(env), {
      account: "envacct",
      endpoint: "http://127.0.0.1:10000/envacct",
      blockSize: 4 * 1024 * 1024,
      concurrency: 2,
    });
    assert.deepEqual(azureSecretsFromEnv(env), { accountKey: KEY, sasToken: SAS });
    const merged = azureSettingsFromOptions({ azureAccount: "flagacct", azureConcurrency: 8 }, env);
    assert.equal(merged.account, "flagacct");
    assert.equal(merged.concurrency, 8);
    assert.equal(merged.blockSize, 4 * 1024 * 1024);
    assert.throws(() => azureSettingsFromEnv({ ETCD_BACKUP_AZURE_BLOCK_SIZE: "0.5" }), /out of range/);
  });

  test("openStore opens azblob:// with the settings and tells the caller its secrets", () => {
    const told: string[] = [];
    const store = openStore(
      "azblob://backups/prod/",
      undefined,
      {},
      {
        settings: { account: "acct1" },
        secrets: { accountKey: KEY },
        onSecret: (s) => told.push(s),
      },
    );
    assert.ok(store instanceof AzureBlobStore);
    assert.equal(store.location, "azblob://backups/prod");
    assert.equal(store.location.includes(KEY), false);
    assert.deepEqual(told, [KEY]);
    assert.throws(() => openStore("azblob://Bad_Container"), UsageError);
  });
});

describe("the redactor knows Azure's secrets", () => {
  test("the variables' values, a connection string's AccountKey and a SAS signature", () => {
    const r = new Redactor().addFromEnv({
      AZURE_STORAGE_KEY: KEY,
      AZURE_CLIENT_SECRET: "client-secret-value-123",
    });
    assert.equal(r.redact(`key ${KEY} and client-secret-value-123`), "key [REDACTED] and [REDACTED]");
    const shaped = new Redactor();
    const other = Buffer.from("another key nobody registered, sixty-four bytes of it..........").toString(
      "base64",
    );
    assert.equal(
      shaped.redact(
        `DefaultEndpointsProtocol=https;AccountName=a1b;AccountKey=${other};EndpointSuffix=core.windows.net`,
      ),
      "DefaultEndpointsProtocol=https;AccountName=a1b;AccountKey=[REDACTED];EndpointSuffix=core.windows.net",
    );
    const url = `https://a1b.blob.core.windows.net/c/x?${SAS}`;
    assert.ok(!shaped.redact(url).includes("AbCdEfGhIjKlMnOp"), shaped.redact(url));
    assert.ok(!shaped.redact(SAS).includes("AbCdEfGhIjKlMnOp"), shaped.redact(SAS));
    assert.match(shaped.redact("AZURE_STORAGE_KEY=abcdef123456"), /^AZURE_STORAGE_KEY=\[REDACTED\]$/);
  });
});
