import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import {
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { describeError } from "../../src/errors.ts";
import { AzureBlobStore } from "../../src/store/azure-blob.ts";
import type { AzureSettings } from "../../src/store/azure-settings.ts";
import { NotFoundError } from "../../src/store/store.ts";
import { startAzurite, type TestAzurite } from "../fixtures/azurite-server.ts";
import { runStoreConformance } from "./conformance.ts";

const MiB = 1024 * 1024;

runStoreConformance("Azure Blob (Azurite)", async () => {
  const azurite = await startAzurite();
  await azurite.createContainer("conformance");
  const store = new AzureBlobStore({
    container: "conformance",
    prefix: "backups/cluster-a",
    settings: { endpoint: azurite.endpoint, blockSize: 4 * MiB, retryBaseDelayMs: 10 },
    secrets: { accountKey: azurite.key },
  });
  return {
    store,
    async cleanup() {
      // The aborted and failed puts of the suite left no staged blocks behind.
      const left: string[] = [];
      for await (const l of store.leftovers()) left.push(l.key);
      await azurite.stop();
      assert.deepEqual(left, []);
    },
    exclusiveCreate: true,
  };
});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The one line the CLI would print for an error, checked to be one line and free of `secret`. */
function userLine(err: unknown, secret: string): string {
  assert.ok(err instanceof Error, `expected an error, got ${String(err)}`);
  const line = describeError(err);
  assert.ok(!line.includes(secret), `the message shows the secret: ${line}`);
  assert.ok(!line.includes("\n"), `the message is more than one line: ${line}`);
  return line;
}

describe("AzureBlobStore against Azurite", () => {
  let azurite: TestAzurite;
  let service: BlobServiceClient;
  before(async () => {
    azurite = await startAzurite();
    await azurite.createContainer("backups");
    service = new BlobServiceClient(
      azurite.endpoint,
      new StorageSharedKeyCredential(azurite.account, azurite.key),
    );
  });
  after(async () => {
    await azurite.stop();
  });

  const makeStore = (settings: AzureSettings = {}, container = "backups") =>
    new AzureBlobStore({
      container,
      settings: { endpoint: azurite.endpoint, blockSize: 4 * MiB, retryBaseDelayMs: 5, ...settings },
      secrets: { accountKey: azurite.key },
    });

  test("a wrong account key is one line naming the credentials, without the key", async () => {
    const wrongKey = randomBytes(64).toString("base64");
    const store = new AzureBlobStore({
      container: "backups",
      settings: { endpoint: azurite.endpoint, maxAttempts: 2, retryBaseDelayMs: 5 },
      secrets: { accountKey: wrongKey },
    });
    const putErr = await store.put("k", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    const line = userLine(putErr, wrongKey);
    assert.match(
      line,
      /^upload azblob:\/\/backups\/k: Azure (rejected the credentials|denied access to container backups)/,
    );
    assert.match(line, /check the account key \(--azure-account-key-file, AZURE_STORAGE_KEY/);
    const listErr = await (async () => {
      for await (const _ of store.list()) break;
    })().catch((e: unknown) => e);
    assert.match(userLine(listErr, wrongKey), /^list azblob:\/\/backups: Azure/);
  });

  test("a wrong key read from --azure-account-key-file is not shown either", async () => {
    const dir = mkdtempSync(join(tmpdir(), "azure-key-"));
    try {
      const wrongKey = randomBytes(64).toString("base64");
      writeFileSync(join(dir, "key"), `${wrongKey}\n`);
      const store = new AzureBlobStore({
        container: "backups",
        settings: {
          endpoint: azurite.endpoint,
          accountKeyFile: join(dir, "key"),
          maxAttempts: 1,
        },
      });
      assert.deepEqual(store.secrets, [wrongKey]);
      const err = await store.stat("k").catch((e: unknown) => e);
      assert.match(userLine(err, wrongKey), /^stat azblob:\/\/backups\/k: Azure/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a missing container is one line saying to create it", async () => {
    const store = makeStore({}, "no-such-container");
    const err = await store.put("k", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    assert.match(
      userLine(err, azurite.key),
      /container no-such-container does not exist in storage account devstoreaccount1 \(create it \(az storage container create/,
    );
    const big = await store.put("big", Readable.from([randomBytes(5 * MiB)])).catch((e: unknown) => e);
    assert.match(describeError(big), /container no-such-container does not exist/);
    const listErr = await (async () => {
      for await (const _ of store.list()) break;
    })().catch((e: unknown) => e);
    assert.match(describeError(listErr), /container no-such-container does not exist/);
  });

  test("an unreachable endpoint says so", async () => {
    const dead = await startAzurite();
    const endpoint = dead.endpoint;
    await dead.stop();
    const store = makeStore({ endpoint, maxAttempts: 2 });
    const err = await store.stat("k").catch((e: unknown) => e);
    assert.match(
      describeError(err),
      new RegExp(`cannot connect to ${endpoint.replace(/[/.]/g, "\\$&")}: connection refused`),
    );
  });

  test("blocks: a body of several blocks, staged two at a time, reads back whole and is one committed blob", async () => {
    const store = makeStore({ concurrency: 2 });
    const bytes = randomBytes(17 * MiB + 5);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < bytes.length; i += 100_000) yield bytes.subarray(i, i + 100_000);
      })(),
    );
    assert.deepEqual(await store.put("multi/blocks.bin", body, { owner: "run-1" }), { size: bytes.length });
    assert.equal(sha256(await readAll(await store.get("multi/blocks.bin"))), sha256(bytes));
    const blocks = await service
      .getContainerClient("backups")
      .getBlockBlobClient("multi/blocks.bin")
      .getBlockList("all");
    assert.equal(blocks.committedBlocks?.length, 5, "five blocks of 4 MiB, the last shorter");
    assert.equal(blocks.uncommittedBlocks?.length ?? 0, 0);
    assert.equal((await store.stat("multi/blocks.bin"))?.owner, "run-1");
  });

  test("list pages past one page", async () => {
    const store = new AzureBlobStore({
      container: "backups",
      settings: { endpoint: azurite.endpoint },
      secrets: { accountKey: azurite.key },
      listPageSize: 100,
    });
    const container = service.getContainerClient("backups");
    const names = Array.from({ length: 350 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(names.slice(i, i + 100).map((n) => container.getBlockBlobClient(n).upload("x", 1)));
    }
    const listed: string[] = [];
    for await (const info of store.list("many/")) listed.push(info.key);
    assert.equal(listed.length, names.length);
    assert.deepEqual(listed.sort(), names);
  });

  test("what a killed upload leaves (staged blocks, no blob) is a leftover, never listed, and can be removed", async () => {
    const store = makeStore();
    const blob = service.getContainerClient("backups").getBlockBlobClient("killed/etcd-1.snap");
    // What a process killed between Put Block and Put Block List leaves behind.
    await blob.stageBlock(Buffer.from("killed-000000").toString("base64"), randomBytes(1000), 1000);
    const listed: string[] = [];
    for await (const info of store.list("killed/")) listed.push(info.key);
    assert.deepEqual(listed, []);
    assert.equal(await store.stat("killed/etcd-1.snap"), null);
    await assert.rejects(store.get("killed/etcd-1.snap"), NotFoundError);
    const left = [];
    for await (const l of store.leftovers("killed/")) left.push(l);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.key, "killed/etcd-1.snap");
    assert.equal(left[0]!.kind, "multipart upload");
    assert.ok(Math.abs(Date.now() - left[0]!.since.getTime()) < 600_000);
    await store.removeLeftover(left[0]!);
    const after = [];
    for await (const l of store.leftovers("killed/")) after.push(l);
    assert.deepEqual(after, []);
    // Nothing is left for other tools to see either: no blob, committed or not.
    const raw = [];
    for await (const b of service
      .getContainerClient("backups")
      .listBlobsFlat({ prefix: "killed/", includeUncommitedBlobs: true }))
      raw.push(b.name);
    assert.deepEqual(raw, []);
    // Removing it again counts as done.
    await store.removeLeftover(left[0]!);
  });

  test("a hierarchical namespace's directory placeholders are not listed as objects", async () => {
    const store = makeStore();
    const container = service.getContainerClient("backups");
    await container.getBlockBlobClient("hns/sub").upload("", 0, { metadata: { hdi_isfolder: "true" } });
    await container.getBlockBlobClient("hns/sub/etcd-1.snap").upload("x", 1);
    const listed: string[] = [];
    for await (const info of store.list("hns/")) listed.push(info.key);
    assert.deepEqual(listed, ["hns/sub/etcd-1.snap"]);
  });

  test("a discard marker a killed discard left is never shown as an object, and is a leftover", async () => {
    const store = makeStore();
    const blob = service.getContainerClient("backups").getBlockBlobClient("marker/etcd-2.snap");
    await blob.commitBlockList([], { metadata: { etcdbackup_discard: "1" } });
    const listed: string[] = [];
    for await (const info of store.list("marker/")) listed.push(info.key);
    assert.deepEqual(listed, []);
    assert.equal(await store.stat("marker/etcd-2.snap"), null);
    await assert.rejects(store.get("marker/etcd-2.snap"), NotFoundError);
    const left = [];
    for await (const l of store.leftovers("marker/")) left.push(l);
    assert.deepEqual(
      left.map((l) => l.key),
      ["marker/etcd-2.snap"],
    );
    await store.removeLeftover(left[0]!);
    assert.equal(await blob.exists(), false);
  });

  /** A container SAS signed with Azurite's key, as `az storage container generate-sas` makes one. */
  const containerSas = (permissions: string) =>
    generateBlobSASQueryParameters(
      {
        containerName: "backups",
        permissions: ContainerSASPermissions.parse(permissions),
        expiresOn: new Date(Date.now() + 3_600_000),
      },
      new StorageSharedKeyCredential(azurite.account, azurite.key),
    ).toString();

  test("a container SAS with r,c,w,d,l does everything the store needs, multi-block puts and leftovers too", async () => {
    const sas = containerSas("rcwdl");
    const store = new AzureBlobStore({
      container: "backups",
      prefix: "sas",
      settings: { endpoint: azurite.endpoint, blockSize: 1 * MiB, retryBaseDelayMs: 5 },
      secrets: { sasToken: `?${sas}` },
    });
    assert.equal(store.settings.auth.kind, "sas");
    const bytes = randomBytes(3 * MiB + 7);
    await store.put("a.snap", Readable.from([bytes]), { ifAbsent: true });
    assert.equal(sha256(await readAll(await store.get("a.snap"))), sha256(bytes));
    await assert.rejects(store.put("a.snap", Readable.from([bytes]), { ifAbsent: true }), /already exists/);
    const listed: string[] = [];
    for await (const info of store.list()) listed.push(info.key);
    assert.deepEqual(listed, ["a.snap"]);
    // A killed upload's blocks, found and discarded with the same token.
    await service
      .getContainerClient("backups")
      .getBlockBlobClient("sas/killed.snap")
      .stageBlock(Buffer.from("killed-000000").toString("base64"), randomBytes(100), 100);
    const left = [];
    for await (const l of store.leftovers()) left.push(l);
    assert.deepEqual(
      left.map((l) => l.key),
      ["killed.snap"],
    );
    await store.removeLeftover(left[0]!);
    for await (const l of store.leftovers()) assert.fail(`still a leftover: ${l.key}`);
    await store.delete("a.snap");
    assert.equal(await store.stat("a.snap"), null);
  });

  test("a read-only SAS lists and reads, and a put is refused in one line without the token", async () => {
    await makeStore().put("ro/x.snap", Readable.from([Buffer.from("readable")]));
    const sas = containerSas("rl");
    const store = new AzureBlobStore({
      container: "backups",
      settings: { endpoint: azurite.endpoint, retryBaseDelayMs: 5 },
      secrets: { sasToken: sas },
    });
    assert.equal((await readAll(await store.get("ro/x.snap"))).toString(), "readable");
    const err = await store.put("ro/y.snap", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    const signature = new URLSearchParams(sas).get("sig") ?? "";
    assert.ok(signature.length > 10);
    const line = userLine(err, signature);
    assert.match(line, /^upload azblob:\/\/backups\/ro\/y\.snap: Azure denied access to container backups/);
    assert.match(line, /check the SAS token/);
  });

  test("no key, no SAS and no identity is one line saying where credentials come from", async () => {
    // DefaultAzureCredential restricted to its environment credential, so nothing probes a metadata service.
    const saved = process.env.AZURE_TOKEN_CREDENTIALS;
    process.env.AZURE_TOKEN_CREDENTIALS = "EnvironmentCredential";
    try {
      const store = new AzureBlobStore({
        container: "backups",
        // Bearer tokens need https; nothing listens there, and no token is ever obtained to send.
        settings: { account: "acct1", endpoint: "https://127.0.0.1:1/acct1", maxAttempts: 1 },
      });
      assert.equal(store.settings.auth.kind, "default credential");
      const err = await store.put("k", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
      assert.match(
        userLine(err, "never-a-secret"),
        /^upload azblob:\/\/backups\/k: no Azure credentials found \(set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN/,
      );
    } finally {
      if (saved === undefined) delete process.env.AZURE_TOKEN_CREDENTIALS;
      else process.env.AZURE_TOKEN_CREDENTIALS = saved;
    }
  });

  /**
   * An HTTP proxy in front of Azurite that answers some requests itself (`answer`) or forwards them and then cuts
   * the connection before the client reads the answer (`drop`), as a network failure after the service acted does.
   */
  async function startProxy(
    decide: (req: { method: string; url: string }) => {
      answer?: { status: number; code: string };
      drop?: boolean;
    },
  ): Promise<{ endpoint: string; seen: { method: string; url: string }[]; close(): Promise<void> }> {
    const seen: { method: string; url: string }[] = [];
    const target = new URL(azurite.endpoint);
    const server: Server = createServer((req, res) => {
      const info = { method: req.method ?? "", url: req.url ?? "" };
      seen.push(info);
      const d = decide(info);
      if (d.answer) {
        const { status, code } = d.answer;
        req.resume();
        req.on("end", () => {
          const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`;
          res.writeHead(status, { "content-type": "application/xml", "x-ms-error-code": code });
          res.end(xml);
        });
        return;
      }
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          if (d.drop) {
            up.resume();
            up.on("end", () => res.socket?.destroy());
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return {
      endpoint: `http://127.0.0.1:${port}${target.pathname}`,
      seen,
      async close() {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  const isStageBlock = (r: { method: string; url: string }) =>
    r.method === "PUT" && r.url.includes("comp=block&");
  const isCommit = (r: { method: string; url: string }) =>
    r.method === "PUT" && r.url.includes("comp=blocklist");

  test("a 503 on staged blocks is retried, and a commit whose answer was lost is found to be ours", async () => {
    let busy = 0;
    let dropped = 0;
    const proxy = await startProxy((r) => {
      if (isStageBlock(r) && busy < 2)
        return busy++ === 0
          ? { answer: { status: 503, code: "ServerBusy" } }
          : { answer: { status: 500, code: "InternalError" } };
      if (isCommit(r) && dropped++ === 0) return { drop: true };
      return {};
    });
    const store = makeStore({ endpoint: proxy.endpoint, concurrency: 1 });
    try {
      const bytes = randomBytes(9 * MiB);
      const result = await store.put("retry/landed.snap", Readable.from([bytes]), {
        ifAbsent: true,
        owner: "run-42",
      });
      assert.deepEqual(result, { size: bytes.length, exclusive: true });
      assert.equal(busy, 2);
      // Three blocks of 4 MiB, two refused once: five Put Block requests; two commits, the first one's answer lost.
      assert.equal(proxy.seen.filter(isStageBlock).length, 5);
      assert.equal(proxy.seen.filter(isCommit).length, 2);
      assert.equal(sha256(await readAll(await store.get("retry/landed.snap"))), sha256(bytes));
    } finally {
      await proxy.close();
    }
  });

  test("a 403 on a block is not retried: the put fails in one line and leaves no blocks", async () => {
    const proxy = await startProxy((r) =>
      isStageBlock(r) ? { answer: { status: 403, code: "AuthorizationPermissionMismatch" } } : {},
    );
    const store = makeStore({ endpoint: proxy.endpoint, concurrency: 1 });
    try {
      const err = await store
        .put("denied/x.snap", Readable.from([randomBytes(5 * MiB)]))
        .catch((e: unknown) => e);
      assert.match(
        userLine(err, azurite.key),
        /Azure denied access to container backups in account devstoreaccount1 \(AuthorizationPermissionMismatch\)/,
      );
      assert.equal(proxy.seen.filter(isStageBlock).length, 1);
      assert.equal(await store.stat("denied/x.snap"), null);
      for await (const l of makeStore().leftovers("denied/")) assert.fail(`leftover ${l.key}`);
    } finally {
      await proxy.close();
    }
  });
});
