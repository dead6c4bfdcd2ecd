import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";

/**
 * A one-use PKI for the test-restore etcd, made in memory with node:crypto (no openssl needed): a CA, a
 * certificate for 127.0.0.1 that etcd serves and uses towards its own peer port, and a client certificate for
 * this process. All ECDSA P-256, valid from an hour ago for a day. Nothing else trusts the CA and its key is
 * dropped once the certificates are signed, so only the holder of the client key can talk to that etcd.
 */
export interface ThrowawayPki {
  /** PEM. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

// DER, as X.690 defines it: tag, length, content.
function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff]);
  else len = Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const octets = (content: Buffer) => tlv(0x04, content);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  return tlv(0x02, (b[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [a! * 40 + b!];
  for (const arc of rest) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A BIT STRING of the named bits (bit 0 is the most significant of the first byte), minimally encoded. */
function bits(...set: number[]): Buffer {
  const last = Math.max(...set);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of set) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (last & 7)]), bytes]));
}

function utcTime(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-11-30T07:31:12.000Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text, "latin1"));
}

const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from(cn)))));
const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

interface Issued {
  cert: string;
  key: KeyObject;
}

function issue(
  subject: string,
  issuer: { name: string; key: KeyObject } | "self",
  kind: "ca" | "leaf",
  key = generateKeyPairSync("ec", { namedCurve: "P-256" }),
): Issued {
  const now = Date.now();
  const extensions =
    kind === "ca"
      ? [
          extension("2.5.29.19", true, seq(bool(true))),
          // digitalSignature, keyCertSign, cRLSign
          extension("2.5.29.15", true, bits(0, 5, 6)),
        ]
      : [
          extension("2.5.29.19", true, seq()),
          // digitalSignature, keyEncipherment
          extension("2.5.29.15", true, bits(0, 2)),
          // serverAuth and clientAuth: etcd uses its certificate both ways towards its peer port.
          extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2"))),
          // IP 127.0.0.1 and DNS localhost.
          extension(
            "2.5.29.17",
            false,
            seq(tlv(0x87, Buffer.from([127, 0, 0, 1])), tlv(0x82, Buffer.from("localhost"))),
          ),
        ];
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    ECDSA_SHA256,
    name(issuer === "self" ? subject : issuer.name),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 24 * 3600_000))),
    name(subject),
    key.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign("sha256", tbs, issuer === "self" ? key.privateKey : issuer.key);
  const der = seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return { cert: `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`, key: key.privateKey };
}

/** Makes the CA and the two certificates; the CA's key is not kept. */
export function makeThrowawayPki(): ThrowawayPki {
  const caName = `etcd-backup test-restore CA ${randomBytes(4).toString("hex")}`;
  const ca = issue(caName, "self", "ca");
  const server = issue("etcd-backup test-restore etcd", { name: caName, key: ca.key }, "leaf");
  const client = issue("etcd-backup test-restore client", { name: caName, key: ca.key }, "leaf");
  const pem = (k: KeyObject) => k.export({ type: "pkcs8", format: "pem" }) as string;
  return {
    caCert: ca.cert,
    serverCert: server.cert,
    serverKey: pem(server.key),
    clientCert: client.cert,
    clientKey: pem(client.key),
  };
}
