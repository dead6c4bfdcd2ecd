// The post-quantum recipient type on its own: key encodings and their errors, the KEM and HPKE against
// the draft-ietf-hpke-pq known-answer vectors, and the recipient kind the manifest records.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { bech32Decode, bech32Encode } from "../../src/age/bech32.ts";
import { AgeKeyError } from "../../src/age/errors.ts";
import { keySchedule } from "../../src/age/hpke.ts";
import { HybridIdentity } from "../../src/age/hybrid.ts";
import {
  decrypt,
  encrypt,
  generateIdentity,
  identityFileText,
  parseIdentities,
  parseRecipient,
  parseRecipientsFile,
  recipientOf,
} from "../../src/age/index.ts";
import { HybridPrivateKey, KEM_ID } from "../../src/age/mlkem768x25519.ts";
import { encryptionPlan } from "../../src/backup/encryption.ts";
import { assertOk, CLI, runCli } from "../fixtures/cli.ts";

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  assert.fail("did not throw");
}

test("keygen --pq's keys: Bech32 with age1pq / AGE-SECRET-KEY-PQ-, a 1216-byte public key, a 32-byte seed", () => {
  const gen = generateIdentity({ pq: true });
  assert.match(gen.identity, /^AGE-SECRET-KEY-PQ-1[0-9A-Z]{58}$/);
  assert.equal(bech32Decode(gen.identity)?.data.length, 32);
  assert.equal(bech32Decode(gen.recipient)?.hrp, "age1pq");
  assert.equal(bech32Decode(gen.recipient)?.data.length, 1216);
  assert.equal(recipientOf(gen.identity), gen.recipient);
  assert.equal(parseRecipient(gen.recipient).publicKey, gen.recipient);
  assert.equal(parseRecipient(gen.recipient).kind, "mlkem768x25519");
  assert.match(
    identityFileText(gen),
    /^# created: \S+Z\n# public key: age1pq1\S+\nAGE-SECRET-KEY-PQ-1\S+\n$/,
  );
  // The public key is a function of the seed alone.
  const seed = bech32Decode(gen.identity)!.data;
  assert.equal(new HybridIdentity(seed).recipient, gen.recipient);
  assert.notEqual(generateIdentity({ pq: true }).recipient, gen.recipient);
});

test("etcd-backup keygen --pq -o writes a 0600 identity file and prints only its public key", async () => {
  const dir = await mkdtemp(join(tmpdir(), "age-pq-keygen-"));
  try {
    const file = join(dir, "key.txt");
    const r = await runCli(["keygen", "--pq", "-o", file]);
    assertOk(r);
    assert.equal(r.stdout, "");
    const printed = /^Public key: (age1pq1\S+)\n$/.exec(r.stderr)?.[1];
    assert.ok(printed, r.stderr);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, "utf8");
    const secret = text.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-PQ-1"))!;
    assert.equal(recipientOf(secret), printed);
    assert.ok(text.includes(`# public key: ${printed}\n`));
    assert.ok(!r.stderr.includes(secret.slice(19)), "the secret key is never printed");
    const again = await runCli(["keygen", "--pq", "-o", file]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);
    assert.equal(await readFile(file, "utf8"), text, "an existing key is never overwritten");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A Node without ML-KEM (before 24.7, or OpenSSL before 3.5): Debian's /usr/bin/node here, when present.
const OLD_NODE = "/usr/bin/node";
const oldNode = existsSync(OLD_NODE)
  ? spawnSync(OLD_NODE, ["-p", "typeof require('node:crypto').encapsulate"]).stdout?.toString().trim()
  : undefined;
test("on a Node without ML-KEM, keygen --pq fails in one line (exit 2) and classic keygen still works", {
  skip: oldNode === "undefined" ? false : `no Node without ML-KEM at ${OLD_NODE}`,
}, () => {
  const pq = spawnSync(OLD_NODE, [CLI, "keygen", "--pq"]);
  assert.equal(pq.status, 2, pq.stderr.toString());
  assert.equal(pq.stdout.length, 0);
  assert.match(
    pq.stderr.toString(),
    /^etcd-backup: post-quantum \(ML-KEM-768\) keys are not available in Node \S+ with OpenSSL \S+ \(run etcd-backup on Node 24\.7 or later built with OpenSSL 3\.5 or later\)\n$/,
  );
  const classic = spawnSync(OLD_NODE, [CLI, "keygen"]);
  assert.equal(classic.status, 0, classic.stderr.toString());
  assert.match(classic.stdout.toString(), /^AGE-SECRET-KEY-1/m);
});

test("identity files mix classic and post-quantum keys; each opens what was encrypted to it", async () => {
  const pq = generateIdentity({ pq: true });
  const classic = generateIdentity();
  const identities = parseIdentities(identityFileText(classic) + "\n" + identityFileText(pq));
  assert.equal(identities.length, 2);
  const data = randomBytes(70_000);
  assert.ok(
    Buffer.from(await decrypt(await encrypt(data, [parseRecipient(pq.recipient)]), identities)).equals(data),
  );
  assert.ok(
    Buffer.from(await decrypt(await encrypt(data, [parseRecipient(classic.recipient)]), identities)).equals(
      data,
    ),
  );
  // A post-quantum file does not open with a classic key, and the other way round.
  await assert.rejects(
    decrypt(await encrypt(data, [parseRecipient(pq.recipient)]), parseIdentities(classic.identity)),
    /no identity matched/,
  );
  await assert.rejects(
    decrypt(await encrypt(data, [parseRecipient(classic.recipient)]), parseIdentities(pq.identity)),
    /no identity matched/,
  );
});

test("a bad age1pq1 recipient is named (it is public) and refused", () => {
  const { recipient } = generateIdentity({ pq: true });
  const key = Buffer.from(bech32Decode(recipient)!.data);
  // A valid Bech32 string whose ML-KEM part fails FIPS 203's modulus check (a coefficient of 4095 >= q).
  const outOfRange = Buffer.from(key);
  outOfRange[0] = 0xff;
  outOfRange[1] = outOfRange[1]! | 0x0f;
  const cases: [string, RegExp][] = [
    [bech32Encode("age1pq", outOfRange), /invalid ML-KEM-768 encapsulation key/],
    [bech32Encode("age1pq", key.subarray(0, 1215)), /expected an age1pq1… public key/],
    [recipient.slice(0, -1) + (recipient.endsWith("q") ? "p" : "q"), /expected an age1pq1… public key/],
    [recipient.toUpperCase(), /./],
  ];
  for (const [bad, why] of cases) {
    const err = thrown(() => parseRecipient(bad)) as AgeKeyError;
    assert.ok(err instanceof AgeKeyError, String(err));
    assert.match(err.message, /invalid recipient "age1pq1|AGE1PQ1/i);
    assert.match(`${err.message} ${err.hint ?? ""}`, why);
  }
  assert.throws(() => parseRecipientsFile(`${recipient}\n${cases[0]![0]}\n`), /recipients file line 2/);
});

test("a bad post-quantum identity line is named by number, never by content", () => {
  const { identity } = generateIdentity({ pq: true });
  const broken = identity.slice(0, -1) + (identity.endsWith("Q") ? "P" : "Q");
  for (const text of [`# mine\n${broken}\n`, `${identity.toLowerCase()}\n`, `${identity}X\n`]) {
    const err = thrown(() => parseIdentities(text)) as AgeKeyError;
    assert.ok(err instanceof AgeKeyError);
    assert.match(err.message, /identity file line \d+ is not a valid age secret key/);
    assert.match(err.hint ?? "", /^expected an AGE-SECRET-KEY-(PQ-)?1… line$/);
    for (const secret of [identity, broken, identity.slice(20, 50), identity.toLowerCase().slice(20, 50)]) {
      assert.ok(!err.message.includes(secret) && !(err.hint ?? "").includes(secret));
    }
  }
});

test("save's encryption plan records the post-quantum kind and refuses a classic recipient beside it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "age-pq-plan-"));
  try {
    const a = generateIdentity({ pq: true });
    const b = generateIdentity({ pq: true });
    await writeFile(join(dir, "team.txt"), `# team\n${b.recipient}\n`);
    const plan = await encryptionPlan(
      { recipients: [a.recipient], recipientsFiles: [join(dir, "team.txt")] },
      { encrypt: true },
    );
    assert.deepEqual(plan?.recipients, [
      { kind: "mlkem768x25519", publicKey: a.recipient },
      { kind: "mlkem768x25519", publicKey: b.recipient },
    ]);
    await assert.rejects(
      encryptionPlan({ recipients: [a.recipient, generateIdentity().recipient] }, { encrypt: true }),
      (err: Error) =>
        err instanceof AgeKeyError &&
        /post-quantum \(age1pq1…\) and classic \(age1…\) recipients cannot be mixed/.test(err.message),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// Known answers: the MLKEM768-X25519 / HKDF-SHA256 / ChaCha20-Poly1305 vectors of draft-ietf-hpke-pq, as the
// filippo.io/hpke module (age's HPKE) ships them. They are read from the Go module cache that
// scripts/install-age.sh fills (nothing of them is copied here); without it the test is skipped with the
// reason printed, and fails in CI.
function hpkePqVectors(): string | undefined {
  let cache = join(process.env.HOME ?? "/root", "go", "pkg", "mod");
  try {
    cache = execFileSync("go", ["env", "GOMODCACHE"], {
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
    })
      .toString()
      .trim();
  } catch {
    // No go: the default cache location.
  }
  const parent = join(cache, "filippo.io");
  if (!existsSync(parent)) return undefined;
  for (const d of readdirSync(parent)
    .filter((n) => n.startsWith("hpke@"))
    .sort()
    .reverse()) {
    const file = join(parent, d, "testdata", "hpke-pq.json");
    if (existsSync(file)) return file;
  }
  return undefined;
}

const vectorsFile = hpkePqVectors();
const noVectors =
  "filippo.io/hpke's test data is not in the Go module cache: run bash scripts/install-age.sh";
if (!vectorsFile && process.env.CI === "true")
  test("hpke-pq vectors are present", () => assert.fail(noVectors));

test("KEM and HPKE key schedule match the hpke-pq known answers", {
  skip: vectorsFile ? false : noVectors,
}, () => {
  interface Vector {
    mode: number;
    kem_id: number;
    kdf_id: number;
    aead_id: number;
    info: string;
    skRm: string;
    pkRm: string;
    enc: string;
    shared_secret: string;
    key: string;
    base_nonce: string;
  }
  const all = JSON.parse(readFileSync(vectorsFile!, "utf8")) as Vector[];
  const ours = all.filter((v) => v.kem_id === KEM_ID);
  assert.ok(ours.length > 0, "no MLKEM768-X25519 vector");
  let suites = 0;
  for (const v of ours) {
    const key = new HybridPrivateKey(Buffer.from(v.skRm, "hex"));
    assert.equal(key.publicKey.toString("hex"), v.pkRm, "public key from the seed");
    const secret = key.decapsulate(Buffer.from(v.enc, "hex"));
    assert.equal(secret?.toString("hex"), v.shared_secret, "decapsulated shared secret");
    if (v.mode !== 0 || v.kdf_id !== 1 || v.aead_id !== 3) continue;
    suites++;
    const schedule = keySchedule(KEM_ID, secret!, Buffer.from(v.info, "hex"));
    assert.equal(schedule.key.toString("hex"), v.key);
    assert.equal(schedule.baseNonce.toString("hex"), v.base_nonce);
  }
  assert.equal(suites, 1, "age's suite (base mode, HKDF-SHA256, ChaCha20-Poly1305) has one vector");
});
