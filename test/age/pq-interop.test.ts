// Post-quantum (age1pq1…, mlkem768x25519) round trips against the real age CLI that supports them, built
// from its Go module by scripts/install-age.sh into .peers/age-<version>/bin (Debian's age 1.1.1 has no
// post-quantum keys). Without that build the tests are skipped with the reason printed, and fail in CI.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  createEncryptStream,
  decrypt,
  encrypt,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  recipientOf,
} from "../../src/age/index.ts";
import { assertOk, assertOneLineError, runCli } from "../fixtures/cli.ts";
import { type EtcdServer, fillKeys, startEtcd } from "../fixtures/etcd-server.ts";

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
// The version scripts/install-age.sh builds, read from the script so the two cannot drift apart.
const AGE_VERSION = /^version=v(\S+)$/m.exec(
  readFileSync(join(ROOT, "scripts", "install-age.sh"), "utf8"),
)![1]!;
const BIN = join(ROOT, ".peers", `age-${AGE_VERSION}`, "bin");
const AGE = join(BIN, "age");
const AGE_KEYGEN = join(BIN, "age-keygen");
const built = existsSync(join(BIN, "..", ".built-from")) && existsSync(AGE) && existsSync(AGE_KEYGEN);
const missing = `age ${AGE_VERSION} (post-quantum keys) is not built: run bash scripts/install-age.sh (needs Go)`;
if (!built) {
  if (process.env.CI === "true") test("age with post-quantum keys is built", () => assert.fail(missing));
  else console.log(`# skipping post-quantum interop: ${missing}`);
}
const skip = built ? false : missing;

const SIZES = [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 12345];
const MLKEM768X25519_PUBLIC_KEY = /^age1pq1[02-9ac-hj-np-z]{1950,}$/;

async function age(args: string[]): Promise<Buffer> {
  const { stdout } = await exec(AGE, args, { encoding: "buffer", maxBuffer: 64 << 20 });
  return stdout;
}

async function ageFails(args: string[]): Promise<string> {
  try {
    await exec(AGE, args, { encoding: "utf8" });
  } catch (err) {
    return (err as { stderr: string }).stderr;
  }
  assert.fail(`age ${args.join(" ")} succeeded`);
}

async function publicKeyOf(identityFile: string): Promise<string> {
  return (await exec(AGE_KEYGEN, ["-y", identityFile])).stdout.trim();
}

function stream(data: Buffer, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  transform.on("data", (c: Buffer) => parts.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    transform.on("end", () => resolve(Buffer.concat(parts)));
    transform.on("error", reject);
  });
  transform.end(data);
  return done;
}

describe("post-quantum interop with the age CLI", { skip }, () => {
  let dir = "";
  let theirKey = ""; // identity file written by age-keygen -pq
  let theirPub = "";
  let ourKey = ""; // identity file written by etcd-backup keygen --pq
  let ourPub = "";
  const plain = new Map<number, Buffer>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "age-pq-interop-"));
    await exec(AGE_KEYGEN, ["-pq", "-o", join(dir, "theirs.key")]);
    theirKey = await readFile(join(dir, "theirs.key"), "utf8");
    theirPub = await publicKeyOf(join(dir, "theirs.key"));
    const r = await runCli(["keygen", "--pq", "-o", join(dir, "ours.key")]);
    assertOk(r);
    ourPub = /^Public key: (\S+)$/m.exec(r.stderr)?.[1] ?? "";
    ourKey = await readFile(join(dir, "ours.key"), "utf8");
    for (const size of SIZES) {
      const data = randomBytes(size);
      plain.set(size, data);
      await writeFile(join(dir, `plain-${size}`), data);
    }
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("keys", () => {
    test("age-keygen -pq's identity parses and gives the public key age-keygen -y prints", () => {
      assert.match(theirPub, MLKEM768X25519_PUBLIC_KEY);
      const line = theirKey.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-PQ-1"))!;
      assert.equal(recipientOf(line), theirPub);
      assert.equal(parseIdentities(theirKey).length, 1);
      const recipient = parseRecipient(theirPub);
      assert.equal(recipient.kind, "mlkem768x25519");
      assert.equal(recipient.publicKey, theirPub);
    });

    test("keygen --pq's file is read by age-keygen -y and has age-keygen -pq's layout", async () => {
      assert.match(ourPub, MLKEM768X25519_PUBLIC_KEY);
      assert.equal(await publicKeyOf(join(dir, "ours.key")), ourPub);
      const mask = (text: string) =>
        text.split("\n").map((l) => l.replace(/age1pq1[0-9a-z]+|AGE-SECRET-KEY-PQ-1[0-9A-Z]+|\d.*Z/, "X"));
      assert.deepEqual(mask(ourKey), mask(theirKey.replace(/(# created: \S+)[+-]\d\d:\d\d/, "$1Z")));
    });
  });

  describe("ours -> age -d", () => {
    for (const size of SIZES) {
      test(`${size} bytes to two post-quantum recipients, binary and armored`, async () => {
        const data = plain.get(size)!;
        const recipients = [parseRecipient(ourPub), parseRecipient(theirPub)];
        const file = join(dir, `ours-${size}.age`);
        const encrypted = Buffer.from(await encrypt(data, recipients));
        assert.equal(encrypted.toString("latin1").match(/^-> mlkem768x25519 /gm)?.length, 2);
        await writeFile(file, encrypted);
        assert.ok((await age(["-d", "-i", join(dir, "theirs.key"), file])).equals(data));
        assert.ok((await age(["-d", "-i", join(dir, "ours.key"), file])).equals(data));

        const armored = join(dir, `ours-${size}.age.asc`);
        await writeFile(armored, await stream(data, createEncryptStream(recipients, { armor: true })));
        assert.ok((await age(["-d", "-i", join(dir, "theirs.key"), armored])).equals(data));
      });
    }
  });

  describe("age -e -> ours", () => {
    for (const size of SIZES) {
      test(`${size} bytes from age -r -r, age -R and age -a`, async () => {
        const data = plain.get(size)!;
        const input = join(dir, `plain-${size}`);
        const recipientsFile = join(dir, "recipients.txt");
        await writeFile(recipientsFile, `# post-quantum team keys\n${theirPub}\n\n${ourPub}\n`);
        assert.equal(parseRecipientsFile(await readFile(recipientsFile, "utf8")).length, 2);
        const ours = parseIdentities(ourKey);
        const theirs = parseIdentities(theirKey);

        const viaR = await age(["-r", theirPub, "-r", ourPub, input]);
        assert.ok(Buffer.from(await decrypt(viaR, ours)).equals(data));
        assert.ok(Buffer.from(await decrypt(viaR, theirs)).equals(data));
        const viaFile = await age(["-R", recipientsFile, input]);
        assert.ok(Buffer.from(await decrypt(viaFile, [...theirs, ...ours])).equals(data));
        const armored = await age(["-a", "-r", theirPub, input]);
        assert.match(armored.toString("latin1"), /^-----BEGIN AGE ENCRYPTED FILE-----/);
        assert.ok(Buffer.from(await decrypt(armored, theirs)).equals(data));
        await assert.rejects(decrypt(armored, ours), /no identity matched any of the recipients/);
      });
    }
  });

  test("mixing post-quantum and classic recipients is refused by age and by us", async () => {
    await exec(AGE_KEYGEN, ["-o", join(dir, "classic.key")]);
    const classic = await publicKeyOf(join(dir, "classic.key"));
    const stderr = await ageFails(["-r", theirPub, "-r", classic, join(dir, "plain-1")]);
    assert.match(stderr, /mix post-quantum and classic/);
    await assert.rejects(
      encrypt(Buffer.from("x"), [parseRecipient(theirPub), parseRecipient(classic)]),
      /post-quantum \(age1pq1…\) and classic \(age1…\) recipients cannot be mixed/,
    );
  });

  describe("etcd-backup save and restore with post-quantum keys", () => {
    let etcd: EtcdServer;

    before(async () => {
      etcd = await startEtcd();
      await fillKeys(etcd, 500, { prefix: "/registry/secrets/default/s-", valueSize: 200 });
    });

    after(async () => {
      await etcd?.destroy();
    });

    test("save --recipient age1pq1… --recipients-file: age -d opens it, restore -i reads it, the manifest names the kind", async () => {
      const store = join(dir, "store");
      await mkdir(store);
      await writeFile(join(dir, "team.txt"), `# age-keygen -pq\n${theirPub}\n`);
      assertOk(
        await runCli([
          "save",
          "--endpoints",
          etcd.endpoint,
          "--to",
          store,
          "--cluster",
          "pq",
          "--recipient",
          ourPub,
          "--recipients-file",
          join(dir, "team.txt"),
        ]),
      );
      const files = (await readdir(store)).sort();
      assert.equal(files.length, 2, files.join(", "));
      const manifest = JSON.parse(await readFile(join(store, files[1]!), "utf8"));
      assert.deepEqual(manifest.encryption.recipients, [
        { kind: "mlkem768x25519", publicKey: ourPub },
        { kind: "mlkem768x25519", publicKey: theirPub },
      ]);
      assert.ok(!JSON.stringify(manifest).includes("AGE-SECRET-KEY"), "no secret in the manifest");

      const restored = join(dir, "restored.db");
      assertOk(
        await runCli([
          "restore",
          "latest",
          "--to",
          store,
          "-i",
          join(dir, "ours.key"),
          "--to-file",
          restored,
        ]),
      );
      await writeFile(
        join(dir, "compressed.zst"),
        await age(["-d", "-i", join(dir, "theirs.key"), join(store, files[0]!)]),
      );
      const { stdout } = await exec("zstd", ["-d", "-c", "-q", join(dir, "compressed.zst")], {
        encoding: "buffer",
        maxBuffer: 64 << 20,
      });
      assert.ok(stdout.equals(await readFile(restored)), "age -d | zstd -d gives what restore wrote");
    });

    test("save with a post-quantum and a classic recipient is refused in one line, exit 2", async () => {
      await exec(AGE_KEYGEN, ["-o", join(dir, "classic2.key")]);
      const classic = await publicKeyOf(join(dir, "classic2.key"));
      const store = join(dir, "mixed");
      await mkdir(store);
      const r = await runCli([
        "save",
        "--endpoints",
        etcd.endpoint,
        "--to",
        store,
        "--cluster",
        "pq",
        "--recipient",
        ourPub,
        "--recipient",
        classic,
      ]);
      assertOneLineError(r, 2, /post-quantum .* and classic .* recipients cannot be mixed/);
      assert.deepEqual(await readdir(store), []);
    });
  });
});
