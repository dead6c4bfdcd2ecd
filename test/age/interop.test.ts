// Round trips against the real age CLI (/usr/bin/age, /usr/bin/age-keygen) in both directions.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  createEncryptStream,
  decrypt,
  encrypt,
  generateIdentity,
  identityFileText,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  passphraseIdentity,
  passphraseRecipient,
  recipientOf,
} from "../../src/age/index.ts";

const exec = promisify(execFile);
const SIZES = [0, 1, 65535, 65536, 65537, 3 * 1024 * 1024 + 12345];

let dir = "";
let keyA = ""; // age-keygen identity file text
let keyB = "";
let pubA = "";
let pubB = "";
const plain = new Map<number, Buffer>();

async function age(args: string[]): Promise<Buffer> {
  const { stdout } = await exec("/usr/bin/age", args, { encoding: "buffer", maxBuffer: 64 << 20 });
  return stdout;
}

async function ageKeygen(path: string): Promise<string> {
  await exec("/usr/bin/age-keygen", ["-o", path]);
  return readFile(path, "utf8");
}

// age reads passphrases only from a terminal: run it under script(1), which gives it a pty, and
// answer each passphrase prompt as it appears.
function ageWithPassphrase(args: string[], passphrase: string): Promise<void> {
  const command = ["/usr/bin/age", ...args].map((a) => `'${a}'`).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { stdio: "pipe" });
    let output = "";
    let answered = 0;
    const timer = setTimeout(() => child.kill(), 30_000);
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString("latin1");
      const prompts = output.match(/passphrase[^:]*:/gi)?.length ?? 0;
      for (; answered < prompts; answered++) child.stdin.write(passphrase + "\n");
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`age ${args.join(" ")} exited ${code}: ${output}`));
    });
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "age-interop-"));
  keyA = await ageKeygen(join(dir, "a.key"));
  keyB = await ageKeygen(join(dir, "b.key"));
  pubA = (await exec("/usr/bin/age-keygen", ["-y", join(dir, "a.key")])).stdout.trim();
  pubB = (await exec("/usr/bin/age-keygen", ["-y", join(dir, "b.key")])).stdout.trim();
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
  test("age-keygen identities parse and give the public key age-keygen -y prints", () => {
    assert.equal(recipientOf(keyA.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-1"))!), pubA);
    assert.equal(parseIdentities(keyA + keyB).length, 2);
    assert.equal(parseRecipient(pubA).publicKey, pubA);
  });

  test("our identity file is read by age-keygen -y and matches age-keygen's layout", async () => {
    const gen = generateIdentity();
    const path = join(dir, "ours.key");
    const text = identityFileText(gen);
    await writeFile(path, text);
    const { stdout } = await exec("/usr/bin/age-keygen", ["-y", path]);
    assert.equal(stdout.trim(), gen.recipient);
    assert.equal(recipientOf(gen.identity), gen.recipient);
    const theirs = keyA
      .split("\n")
      .map((l) => l.replace(/age1[0-9a-z]+|AGE-SECRET-KEY-1[0-9A-Z]+|\d.*Z/, "X"));
    const ours = text.split("\n").map((l) => l.replace(/age1[0-9a-z]+|AGE-SECRET-KEY-1[0-9A-Z]+|\d.*Z/, "X"));
    assert.deepEqual(ours, theirs);
  });
});

describe("ours -> age", () => {
  for (const size of SIZES) {
    test(`${size} bytes to two recipients, binary and armored`, async () => {
      const data = plain.get(size)!;
      const recipients = [parseRecipient(pubA), parseRecipient(pubB)];
      const file = join(dir, `ours-${size}.age`);
      await writeFile(file, await encrypt(data, recipients));
      assert.ok((await age(["-d", "-i", join(dir, "b.key"), file])).equals(data));
      assert.ok((await age(["-d", "-i", join(dir, "a.key"), file])).equals(data));

      const armored = join(dir, `ours-${size}.age.asc`);
      const parts: Buffer[] = [];
      const enc = createEncryptStream(recipients, { armor: true });
      enc.on("data", (c: Buffer) => parts.push(c));
      const done = new Promise((resolve, reject) => enc.on("end", resolve).on("error", reject));
      enc.end(data);
      await done;
      const text = Buffer.concat(parts);
      assert.match(text.toString("latin1"), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
      await writeFile(armored, text);
      assert.ok((await age(["-d", "-i", join(dir, "a.key"), armored])).equals(data));
    });
  }
});

describe("age -> ours", () => {
  for (const size of SIZES) {
    test(`${size} bytes from age -r -r, age -R and age -a`, async () => {
      const data = plain.get(size)!;
      const input = join(dir, `plain-${size}`);
      const recipientsFile = join(dir, "recipients.txt");
      await writeFile(recipientsFile, `# team keys\n${pubA}\n\n${pubB}\n`);
      assert.equal(parseRecipientsFile(await readFile(recipientsFile, "utf8")).length, 2);
      const both = parseIdentities(keyB + keyA);
      const onlyA = parseIdentities(keyA);

      const viaR = await age(["-r", pubA, "-r", pubB, input]);
      assert.ok(Buffer.from(await decrypt(viaR, onlyA)).equals(data));
      assert.ok(Buffer.from(await decrypt(viaR, parseIdentities(keyB))).equals(data));
      const viaFile = await age(["-R", recipientsFile, input]);
      assert.ok(Buffer.from(await decrypt(viaFile, both)).equals(data));
      const armored = await age(["-a", "-r", pubB, input]);
      assert.match(armored.toString("latin1"), /^-----BEGIN AGE ENCRYPTED FILE-----/);
      assert.ok(Buffer.from(await decrypt(armored, both)).equals(data));
      await assert.rejects(decrypt(armored, onlyA), /no identity matched any of the recipients/);
    });
  }
});

describe("passphrase (age under a pty)", () => {
  test("ours scrypt at the default work factor -> age -d", async () => {
    const data = plain.get(65537)!;
    const file = join(dir, "ours-pass.age");
    const encrypted = Buffer.from(await encrypt(data, [passphraseRecipient("correct horse battery")]));
    assert.match(encrypted.toString("latin1", 0, 80), /-> scrypt [A-Za-z0-9+/]{22} 18\n/);
    await writeFile(file, encrypted);
    const out = join(dir, "ours-pass.out");
    await ageWithPassphrase(["-d", "-o", out, file], "correct horse battery");
    assert.ok((await readFile(out)).equals(data));
  });

  test("age -p -> ours, and a wrong passphrase does not match", async () => {
    const data = plain.get(1)!;
    const file = join(dir, "age-pass.age");
    await ageWithPassphrase(["-p", "-o", file, join(dir, "plain-1")], "pässphrase ✓");
    const encrypted = await readFile(file);
    assert.ok(Buffer.from(await decrypt(encrypted, [passphraseIdentity("pässphrase ✓")])).equals(data));
    await assert.rejects(decrypt(encrypted, [passphraseIdentity("wrong")]), /no identity matched/);
  });
});
