import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { after, before, describe, test } from "node:test";
import {
  decodeHeaderBlock,
  encodeHeader,
  parsePaxRecords,
  type TarHeader,
} from "../../src/config-archive/tar-header.ts";
import { readTar } from "../../src/config-archive/tar-reader.ts";
import { createTarStream, type TarInput } from "../../src/config-archive/tar-writer.ts";

const LONG_DIR = `deep/${"d".repeat(120)}/${"e".repeat(120)}`;
const LONG_FILE = `${LONG_DIR}/${"f".repeat(150)}.key`;

function member(
  header: Omit<TarHeader, "uid" | "gid" | "mtime" | "size"> & Partial<TarHeader>,
  content?: Buffer,
): TarInput {
  const h: TarHeader = { uid: 1000, gid: 1000, mtime: 1_700_000_000, ...header, size: content?.length ?? 0 };
  return content ? { header: h, open: () => Readable.from([content]) } : { header: h };
}

async function readAll(tar: Buffer): Promise<{ header: TarHeader; content: Buffer }[]> {
  const out: { header: TarHeader; content: Buffer }[] = [];
  for await (const m of readTar(Readable.from([tar])))
    out.push({ header: m.header, content: await buffer(m.body) });
  return out;
}

describe("tar writer and reader", () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "etcd-backup-tar-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const members: TarInput[] = [
    member({ path: "pki", type: "directory", mode: 0o755 }),
    member({ path: "pki/ca.key", type: "file", mode: 0o600 }, Buffer.from("-----BEGIN PRIVATE KEY-----\n")),
    member({ path: "pki/ca.crt", type: "file", mode: 0o644 }, Buffer.alloc(1537, 7)),
    member({ path: "pki/empty", type: "file", mode: 0o640 }, Buffer.alloc(0)),
    member({ path: "pki/current.pem", type: "symlink", mode: 0o777, linkpath: "ca.crt" }),
    member({ path: `pki/long-link`, type: "symlink", mode: 0o777, linkpath: `/${"t".repeat(140)}` }),
    member({ path: "deep", type: "directory", mode: 0o700 }),
    member({ path: LONG_DIR, type: "directory", mode: 0o750 }),
    member({ path: LONG_FILE, type: "file", mode: 0o600 }, Buffer.from("long")),
    member({ path: "pki/ünïcode.conf", type: "file", mode: 0o644 }, Buffer.from("u")),
  ];

  test("what we write reads back identically", async () => {
    const tar = await buffer(createTarStream(members));
    assert.equal(tar.length % 512, 0);
    const back = await readAll(tar);
    assert.deepEqual(
      back.map((m) => [
        m.header.path,
        m.header.type,
        m.header.mode,
        m.header.size,
        m.header.linkpath,
        m.header.mtime,
        m.header.uid,
      ]),
      members.map((m) => [
        m.header.path,
        m.header.type,
        m.header.mode,
        m.header.size,
        m.header.linkpath,
        m.header.mtime,
        m.header.uid,
      ]),
    );
    assert.equal(back[2]!.content.length, 1537);
    assert.ok(back[2]!.content.every((b) => b === 7));
  });

  test("GNU tar lists and extracts our archive with names, modes, links and content", async () => {
    const file = join(work, "ours.tar");
    writeFileSync(file, await buffer(createTarStream(members)));
    const listed = execFileSync("tar", ["-tf", file]).toString().trim().split("\n");
    assert.deepEqual(
      listed,
      members.map((m) => (m.header.type === "directory" ? `${m.header.path}/` : m.header.path)),
    );
    const out = join(work, "gnu-out");
    mkdirSync(out);
    execFileSync("tar", ["-xf", file, "-C", out]);
    assert.equal(lstatSync(join(out, "pki/ca.key")).mode & 0o777, 0o600);
    assert.equal(lstatSync(join(out, "pki/ca.crt")).mode & 0o777, 0o644);
    assert.equal(lstatSync(join(out, "pki/empty")).mode & 0o777, 0o640);
    assert.equal(readFileSync(join(out, "pki/ca.key"), "utf8"), "-----BEGIN PRIVATE KEY-----\n");
    assert.equal(readlinkSync(join(out, "pki/current.pem")), "ca.crt");
    assert.equal(readlinkSync(join(out, "pki/long-link")), `/${"t".repeat(140)}`);
    assert.equal(readFileSync(join(out, LONG_FILE), "utf8"), "long");
    assert.equal(readFileSync(join(out, "pki/ünïcode.conf"), "utf8"), "u");
    assert.equal(Math.floor(lstatSync(join(out, "pki/ca.crt")).mtimeMs / 1000), 1_700_000_000);
    // GNU tar's own check of the archive finds nothing to complain about.
    execFileSync("tar", ["--compare", "-f", file, "-C", out]);
  });

  for (const format of ["pax", "gnu", "ustar"] as const) {
    test(`we read what GNU tar writes with --format=${format}`, async () => {
      const src = join(work, `src-${format}`);
      const long = format === "ustar" ? "pki/etcd" : `pki/${"x".repeat(130)}`;
      mkdirSync(join(src, long), { recursive: true });
      writeFileSync(join(src, long, "peer.key"), "secret");
      chmodSync(join(src, long, "peer.key"), 0o600);
      writeFileSync(join(src, "pki", "ca.crt"), Buffer.alloc(3000, 1));
      chmodSync(join(src, "pki", "ca.crt"), 0o644);
      symlinkSync("../pki/ca.crt", join(src, "pki", "link.crt"));
      const file = join(work, `gnu-${format}.tar`);
      execFileSync("tar", [`--format=${format}`, "--sort=name", "-cf", file, "-C", src, "pki"]);
      const back = await readAll(readFileSync(file));
      const byPath = new Map(back.map((m) => [m.header.path, m]));
      assert.deepEqual(
        [...byPath.keys()].sort(),
        ["pki", "pki/ca.crt", "pki/link.crt", long, `${long}/peer.key`].sort(),
      );
      assert.equal(byPath.get(`${long}/peer.key`)!.content.toString(), "secret");
      assert.equal(byPath.get(`${long}/peer.key`)!.header.mode, 0o600);
      assert.equal(byPath.get("pki/ca.crt")!.content.length, 3000);
      assert.equal(byPath.get("pki/ca.crt")!.header.mode, 0o644);
      assert.equal(byPath.get("pki/link.crt")!.header.linkpath, "../pki/ca.crt");
      assert.equal(byPath.get("pki")!.header.type, "directory");
    });
  }

  test("a member not read is skipped; the next one is intact", async () => {
    const tar = await buffer(createTarStream(members));
    const paths: string[] = [];
    for await (const m of readTar(Readable.from([tar]))) {
      paths.push(m.header.path);
      if (m.header.path === LONG_FILE) assert.equal((await buffer(m.body)).toString(), "long");
    }
    assert.equal(paths.length, members.length);
  });

  test("a truncated archive and a damaged header are errors, not a short listing", async () => {
    const tar = await buffer(createTarStream(members));
    for (const cut of [100, 512, 1024 + 10, tar.length - 1024]) {
      await assert.rejects(readAll(tar.subarray(0, cut)), /truncated/, `cut at ${cut}`);
    }
    const damaged = Buffer.from(tar);
    damaged[10]! ^= 0x20;
    await assert.rejects(readAll(damaged), /checksum mismatch/);
  });

  test("a file that changes size while archived fails the stream", async () => {
    const liar: TarInput = {
      header: { path: "a", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 5 },
      open: () => Readable.from([Buffer.from("abc")]),
    };
    await assert.rejects(buffer(createTarStream([liar])), /a shrank while being archived \(3 of 5 bytes\)/);
  });

  test("pax records are length-prefixed as the standard says, including the length's own digits", () => {
    const block = encodeHeader({
      path: `${"n".repeat(95)}/${"m".repeat(101)}`,
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
    });
    const pax = decodeHeaderBlock(block.subarray(0, 512));
    assert.equal(pax.typeflag, "x");
    const data = block.subarray(512, 512 + pax.size);
    const record = data.toString();
    assert.equal(Number(record.split(" ")[0]), Buffer.byteLength(record));
    assert.equal(parsePaxRecords(data).get("path"), `${"n".repeat(95)}/${"m".repeat(101)}`);
  });

  test("hard links and devices are refused by name", async () => {
    const src = join(work, "hard");
    mkdirSync(src);
    writeFileSync(join(src, "a"), "x");
    execFileSync("ln", [join(src, "a"), join(src, "b")]);
    const file = join(work, "hard.tar");
    execFileSync("tar", ["--format=pax", "--sort=name", "-cf", file, "-C", src, "a", "b"]);
    await assert.rejects(readAll(readFileSync(file)), /b is a hard link, which this tool does not restore/);
  });
});
