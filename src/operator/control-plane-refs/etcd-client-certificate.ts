import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";

/**
 * A short-lived etcd client certificate signed by a cluster's etcd CA, as Cluster API's kubeadm control plane
 * provider makes one to reach etcd (CN `cluster-api.x-k8s.io` there; ours is `etcd-backup`): X.509 v3, key usage
 * digitalSignature, extended key usage clientAuth, not a CA. The DER is written here (Node can verify
 * certificates but not issue them); nothing is cached: each backup run gets a fresh key that lives in memory only.
 *
 * Throws `EtcdCaProblem` with one line saying what is wrong with the CA (unreadable, key not matching, expired).
 */

export class EtcdCaProblem extends Error {
  override name = "EtcdCaProblem";
}

/** The common name of the certificates we issue; etcd's RBAC, when enabled, sees this user. */
export const CLIENT_COMMON_NAME = "etcd-backup";

export interface IssuedClientCertificate {
  /** PEM of the client certificate and its PKCS#8 private key. Secret: `keyPem`. */
  certPem: Buffer;
  keyPem: Buffer;
  notAfter: Date;
}

// ---- DER (ITU-T X.690), only the forms a certificate needs ----

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}
const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const explicit = (n: number, content: Buffer) => der(0xa0 | n, content);
const nul = () => Buffer.from([0x05, 0x00]);
const bool = (v: boolean) => der(0x01, Buffer.from([v ? 0xff : 0x00]));
const octets = (b: Buffer) => der(0x04, b);
const bits = (b: Buffer, unused = 0) => der(0x03, Buffer.concat([Buffer.from([unused]), b]));
const utf8 = (s: string) => der(0x0c, Buffer.from(s, "utf8"));

function integer(b: Buffer): Buffer {
  let v = b;
  while (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) v = v.subarray(1);
  if ((v[0]! & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return der(0x02, v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const base128: number[] = [];
    let v = p;
    do {
      base128.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < base128.length - 1; i++) base128[i]! |= 0x80;
    out.push(...base128);
  }
  return der(0x06, Buffer.from(out));
}

/** UTCTime for years before 2050, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-30T10:15:00.000Z
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(digits.slice(2), "ascii"))
    : der(0x18, Buffer.from(digits, "ascii"));
}

interface Tlv {
  tag: number;
  /** Offsets of the whole element and of its content. */
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(buf: Buffer, at: number): Tlv {
  const tag = buf[at];
  let lenByte = buf[at + 1];
  if (tag === undefined || lenByte === undefined) throw new EtcdCaProblem("truncated DER");
  let pos = at + 2;
  let len = lenByte;
  if (lenByte & 0x80) {
    const count = lenByte & 0x7f;
    if (count === 0 || count > 4) throw new EtcdCaProblem("unsupported DER length");
    len = 0;
    for (let i = 0; i < count; i++) {
      lenByte = buf[pos++];
      if (lenByte === undefined) throw new EtcdCaProblem("truncated DER");
      len = len * 256 + lenByte;
    }
  }
  if (pos + len > buf.length) throw new EtcdCaProblem("truncated DER");
  return { tag, start: at, contentStart: pos, end: pos + len };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const t = readTlv(buf, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** The subject Name of a certificate, as its DER bytes (it becomes the issuer of what the CA signs). */
export function subjectDer(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0);
  const tbs = children(certDer, cert)[0];
  if (!tbs) throw new EtcdCaProblem("not a certificate");
  const fields = children(certDer, tbs);
  const skip = fields[0]?.tag === 0xa0 ? 1 : 0; // the explicit version
  // serialNumber, signature, issuer, validity, subject
  const subject = fields[skip + 4];
  if (subject?.tag !== 0x30) throw new EtcdCaProblem("not a certificate");
  return certDer.subarray(subject.start, subject.end);
}

/** The signature algorithm for the CA's key: its AlgorithmIdentifier and the digest to sign with. */
function signatureAlgorithm(caKey: KeyObject): { id: Buffer; digest: string | null } {
  switch (caKey.asymmetricKeyType) {
    case "rsa":
      return { id: seq(oid("1.2.840.113549.1.1.11"), nul()), digest: "sha256" };
    case "ec": {
      const curve = caKey.asymmetricKeyDetails?.namedCurve;
      if (curve === "secp384r1") return { id: seq(oid("1.2.840.10045.4.3.3")), digest: "sha384" };
      if (curve === "secp521r1") return { id: seq(oid("1.2.840.10045.4.3.4")), digest: "sha512" };
      return { id: seq(oid("1.2.840.10045.4.3.2")), digest: "sha256" };
    }
    case "ed25519":
      return { id: seq(oid("1.3.101.112")), digest: null };
    default:
      throw new EtcdCaProblem(`the CA key is ${caKey.asymmetricKeyType}; RSA, ECDSA or Ed25519 is needed`);
  }
}

/**
 * Issues a client certificate for `lifetimeMs` (default one hour) from the CA certificate and key (PEM), as a
 * kubeadm cluster's `etcd/ca.crt` and `etcd/ca.key` (Cluster API's `<cluster>-etcd` Secret, `tls.crt`/`tls.key`).
 */
export function issueEtcdClientCertificate(
  caCertPem: Buffer,
  caKeyPem: Buffer,
  options: { now?: Date; lifetimeMs?: number } = {},
): IssuedClientCertificate {
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caCertPem);
  } catch {
    throw new EtcdCaProblem("tls.crt is not a PEM certificate");
  }
  let caKey: KeyObject;
  try {
    caKey = createPrivateKey(caKeyPem);
  } catch {
    throw new EtcdCaProblem("tls.key is not a PEM private key");
  }
  if (!ca.checkPrivateKey(caKey)) throw new EtcdCaProblem("tls.key is not the key of tls.crt");
  if (!ca.ca) throw new EtcdCaProblem("tls.crt is not a CA certificate (basicConstraints CA:FALSE)");
  const now = options.now ?? new Date();
  if (Date.parse(ca.validTo) <= now.getTime()) {
    throw new EtcdCaProblem(`the CA certificate expired on ${new Date(ca.validTo).toISOString()}`);
  }
  const notBefore = new Date(now.getTime() - 5 * 60_000); // clocks a little behind ours
  const notAfter = new Date(
    Math.min(now.getTime() + (options.lifetimeMs ?? 3_600_000), Date.parse(ca.validTo)),
  );
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const alg = signatureAlgorithm(caKey);
  const extension = (id: string, critical: boolean, value: Buffer) =>
    seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    alg.id,
    subjectDer(ca.raw),
    seq(time(notBefore), time(notAfter)),
    seq(set(seq(oid("2.5.4.3"), utf8(CLIENT_COMMON_NAME)))),
    publicKey.export({ type: "spki", format: "der" }),
    explicit(
      3,
      seq(
        extension("2.5.29.15", true, bits(Buffer.from([0x80]), 7)), // keyUsage: digitalSignature
        extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.2"))), // extKeyUsage: clientAuth
        extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
      ),
    ),
  );
  const signature = sign(alg.digest, tbs, caKey);
  const certDer = seq(tbs, alg.id, bits(signature));
  const b64 = certDer.toString("base64").replace(/(.{64})/g, "$1\n");
  return {
    certPem: Buffer.from(`-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`),
    keyPem: Buffer.from(privateKey.export({ type: "pkcs8", format: "pem" }) as string),
    notAfter,
  };
}
