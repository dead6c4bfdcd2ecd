import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import {
  createDecryptStream,
  createEncryptStream,
  generateIdentity,
  parseIdentities,
  parseRecipient,
} from "../../src/age/index.ts";
import { resolveBackup } from "../../src/catalog/catalog.ts";
import { backupKey } from "../../src/catalog/names.ts";
import { restoreConfigArchive, safeMemberPath } from "../../src/config-archive/extract.ts";
import { saveConfigArchive } from "../../src/config-archive/save.ts";
import type { TarHeader } from "../../src/config-archive/tar-header.ts";
import { createTarStream } from "../../src/config-archive/tar-writer.ts";
import { describeError } from "../../src/errors.ts";
import { LocalStore } from "../../src/store/local.ts";

describe("config archive round trip", () => {
  let work: string;
  let src: string;
  let store: LocalStore;
  const key = generateIdentity();
  const encryption = {
    createStage: () => createEncryptStream([parseRecipient(key.recipient)]),
    recipients: [{ kind: "X25519", publicKey: key.recipient }],
  };
  const decrypt = () => createDecryptStream(parseIdentities(key.identity));

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-config-"));
    src = join(work, "etc", "kubernetes");
    mkdirSync(join(src, "pki", "etcd"), { recursive: true });
    mkdirSync(join(src, "manifests"));
    writeFileSync(join(src, "pki", "ca.key"), "CA PRIVATE KEY\n");
    chmodSync(join(src, "pki", "ca.key"), 0o600);
    writeFileSync(join(src, "pki", "ca.crt"), "CA CERT\n");
    chmodSync(join(src, "pki", "ca.crt"), 0o644);
    writeFileSync(join(src, "pki", "etcd", "peer.key"), "PEER KEY\n");
    chmodSync(join(src, "pki", "etcd", "peer.key"), 0o600);
    chmodSync(join(src, "pki", "etcd"), 0o700);
    symlinkSync("../ca.crt", join(src, "pki", "etcd", "ca.crt"));
    writeFileSync(join(src, "manifests", "etcd.yaml"), "kind: Pod\n");
    writeFileSync(join(src, "admin.conf"), "kubeconfig\n");
    chmodSync(join(src, "admin.conf"), 0o600);
    mkdirSync(join(work, "store"));
    store = new LocalStore(join(work, "store"));
    await saveConfigArchive({
      paths: [join(src, "pki"), join(src, "manifests"), join(src, "admin.conf")],
      store,
      cluster: "kube",
      compression: "zstd",
      encryption,
    });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test("the archive is named beside the snapshots, encrypted, with a config manifest", async () => {
    const names = readdirSync(join(work, "store")).sort();
    assert.equal(names.length, 2);
    assert.match(names[0]!, /^kube-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\.config\.tar\.zst\.age$/);
    const manifest = JSON.parse(readFileSync(join(work, "store", names[1]!), "utf8"));
    assert.equal(manifest.kind, "config");
    assert.deepEqual(
      {
        files: manifest.config.files,
        directories: manifest.config.directories,
        symlinks: manifest.config.symlinks,
      },
      { files: 5, directories: 3, symlinks: 1 },
    );
    assert.equal(manifest.config.bytes, "CA PRIVATE KEY\nCA CERT\nPEER KEY\nkind: Pod\nkubeconfig\n".length);
    assert.ok(
      !readFileSync(join(work, "store", names[0]!)).includes("CA PRIVATE KEY"),
      "the key is not in the clear",
    );
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    assert.equal(entry.state, "complete");
    assert.equal(entry.manifest?.sha256.length, 64);
  });

  test("restores modes, the directory, the symlink and the content", async () => {
    const target = join(work, "restored");
    mkdirSync(target);
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    const result = await restoreConfigArchive({ store, entry, decrypt, target });
    assert.deepEqual(
      { f: result.files, d: result.directories, s: result.symlinks, r: result.replaced },
      { f: 5, d: 3, s: 1, r: 0 },
    );
    const root = join(target, src);
    assert.equal(lstatSync(join(root, "pki", "ca.key")).mode & 0o7777, 0o600);
    assert.equal(lstatSync(join(root, "pki", "ca.crt")).mode & 0o7777, 0o644);
    assert.equal(lstatSync(join(root, "admin.conf")).mode & 0o7777, 0o600);
    assert.equal(lstatSync(join(root, "pki", "etcd")).mode & 0o7777, 0o700);
    assert.ok(lstatSync(join(root, "pki", "etcd")).isDirectory());
    assert.equal(readlinkSync(join(root, "pki", "etcd", "ca.crt")), "../ca.crt");
    assert.equal(readFileSync(join(root, "pki", "etcd", "peer.key"), "utf8"), "PEER KEY\n");
    assert.equal(readFileSync(join(root, "manifests", "etcd.yaml"), "utf8"), "kind: Pod\n");
    assert.equal(
      Math.floor(lstatSync(join(root, "pki", "ca.key")).mtimeMs / 1000),
      Math.floor(lstatSync(join(src, "pki", "ca.key")).mtimeMs / 1000),
    );
    assert.deepEqual(
      readdirSync(target).filter((n) => n.startsWith(".etcd-backup")),
      [],
      "staging is gone",
    );
  });

  test("existing files are refused without --force (nothing changes), replaced with it", async () => {
    const target = join(work, "existing");
    const root = join(target, src);
    mkdirSync(join(root, "pki"), { recursive: true });
    writeFileSync(join(root, "pki", "ca.key"), "NEWER KEY\n");
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    await assert.rejects(
      restoreConfigArchive({ store, entry, decrypt, target }),
      /1 file already exists \(.*pki\/ca\.key\); nothing was restored/,
    );
    assert.equal(readFileSync(join(root, "pki", "ca.key"), "utf8"), "NEWER KEY\n");
    assert.ok(!existsSync(join(root, "pki", "ca.crt")), "nothing else was written either");
    const result = await restoreConfigArchive({ store, entry, decrypt, target, force: true });
    assert.equal(result.replaced, 1);
    assert.equal(readFileSync(join(root, "pki", "ca.key"), "utf8"), "CA PRIVATE KEY\n");
    assert.equal(lstatSync(join(root, "pki", "ca.key")).mode & 0o7777, 0o600);
  });

  test("--force replaces a symlink in the target instead of writing through it", async () => {
    const target = join(work, "through-link");
    const root = join(target, src);
    mkdirSync(join(root, "pki"), { recursive: true });
    const victim = join(work, "victim.txt");
    writeFileSync(victim, "untouched");
    symlinkSync(victim, join(root, "pki", "ca.key"));
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    await restoreConfigArchive({ store, entry, decrypt, target, force: true });
    assert.equal(readFileSync(victim, "utf8"), "untouched");
    assert.ok(lstatSync(join(root, "pki", "ca.key")).isFile());
  });

  test("an encrypted archive without a key and plain storage without the acknowledgement are refused", async () => {
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    await assert.rejects(restoreConfigArchive({ store, entry, target: work }), /is encrypted/);
    await assert.rejects(
      saveConfigArchive({ paths: [src], store, cluster: "plain", compression: "zstd", encryption: null }),
      /refusing to store the configuration unencrypted: it holds the cluster's private keys/,
    );
    assert.ok(!readdirSync(join(work, "store")).some((n) => n.startsWith("plain-")), "nothing stored");
  });

  test("safeMemberPath rejects what would leave the target", () => {
    assert.equal(safeMemberPath("./etc//kubernetes/./pki"), "etc/kubernetes/pki");
    assert.throws(() => safeMemberPath("../etc/passwd"), /climbs out/);
    assert.throws(() => safeMemberPath("etc/../../x"), /climbs out/);
    assert.throws(() => safeMemberPath("/etc/passwd"), /is absolute/);
    assert.throws(() => safeMemberPath("./"), /has no name/);
  });

  // Hostile archives, written with our tar writer (which archives whatever it is given) and stored plain.
  const hostile: [string, TarHeader[], RegExp][] = [
    [
      "a .. path",
      [{ path: "../escaped", type: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }],
      /climbs out with \.\./,
    ],
    [
      "an absolute path",
      [{ path: `${"/"}escaped-abs`, type: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }],
      /is absolute/,
    ],
    [
      "a file under the archive's own symlink",
      [
        { path: "link", type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkpath: "/tmp" },
        { path: "link/escaped", type: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 },
      ],
      /link\/escaped lies under the archive's symlink link/,
    ],
  ];
  for (const [name, headers, error] of hostile) {
    test(`${name} is rejected and nothing is written`, async () => {
      const dir = join(work, `hostile-${headers.length}-${name.length}`);
      mkdirSync(join(dir, "store"), { recursive: true });
      mkdirSync(join(dir, "target"));
      const hostileStore = new LocalStore(join(dir, "store"));
      const key = backupKey({
        cluster: "evil",
        time: new Date(),
        compression: "none",
        encrypted: false,
        kind: "config",
      });
      const tar = createTarStream(
        headers.map((header) => ({
          header,
          ...(header.type === "file" ? { open: () => Readable.from([Buffer.from("x")]) } : {}),
        })),
      );
      await hostileStore.put(key, tar);
      const entry = await resolveBackup(hostileStore, "latest", { kind: "config" });
      await assert.rejects(
        restoreConfigArchive({ store: hostileStore, entry, target: join(dir, "target") }),
        (err) => {
          assert.match(describeError(err), error);
          return true;
        },
      );
      assert.deepEqual(readdirSync(join(dir, "target")), [], "target untouched");
      assert.ok(
        !existsSync(join(dir, "escaped")) && !existsSync("/escaped-abs") && !existsSync("/tmp/escaped"),
      );
    });
  }

  test("an existing symlink on the way in the target is refused", async () => {
    const target = join(work, "symlinked-target");
    mkdirSync(target);
    const elsewhere = join(work, "elsewhere");
    mkdirSync(elsewhere);
    const first = src.split("/").filter(Boolean)[0]!;
    symlinkSync(elsewhere, join(target, first));
    const entry = await resolveBackup(store, "latest", { kind: "config" });
    await assert.rejects(
      restoreConfigArchive({ store, entry, decrypt, target }),
      new RegExp(`${first} is a symlink; refusing to restore`),
    );
    assert.deepEqual(readdirSync(elsewhere), []);
  });

  test("a tampered archive fails the manifest's sha256 and nothing is written", async () => {
    const dir = join(work, "tamper");
    mkdirSync(join(dir, "store"), { recursive: true });
    mkdirSync(join(dir, "target"));
    const plainStore = new LocalStore(join(dir, "store"));
    const saved = await saveConfigArchive({
      paths: [join(src, "manifests")],
      store: plainStore,
      cluster: "t",
      compression: "none",
      encryption: null,
      plaintextPrivateKeysAcknowledged: true,
    });
    const path = join(dir, "store", saved.key);
    const bytes = readFileSync(path);
    const at = bytes.indexOf("kind: Pod");
    bytes[at] = "K".charCodeAt(0);
    writeFileSync(path, bytes);
    const entry = await resolveBackup(plainStore, "latest", { kind: "config" });
    await assert.rejects(
      restoreConfigArchive({ store: plainStore, entry, target: join(dir, "target") }),
      /does not match its manifest's sha256/,
    );
    assert.deepEqual(readdirSync(join(dir, "target")), []);
  });
});
