import { createDecipheriv } from "node:crypto";
import { readFile } from "node:fs/promises";
import { yaml } from "../../yaml.ts";
import { type EncryptionPrefix, parseEncryptionPrefix } from "./encrypted-value.ts";
import { secretboxOpen } from "./secretbox.ts";

/**
 * The apiserver's EncryptionConfiguration (apiserver.config.k8s.io/v1): `resources[].providers[]`, each
 * provider `aescbc`, `aesgcm` or `secretbox` with `keys: [{name, secret}]` (secret in base64), or
 * `identity`. Only the keys matter for reading a snapshot: a value names its provider and key in its prefix.
 */
export interface EncryptionKeys {
  /** Key bytes by `<provider>:<key name>`. */
  keys: Map<string, Buffer>;
}

const SUPPORTED = ["aescbc", "aesgcm", "secretbox"];

/** Parses an EncryptionConfiguration document. Throws on YAML that is not one. Never echoes key material. */
export function parseEncryptionConfig(text: string): EncryptionKeys {
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (cause) {
    throw new Error("encryption configuration is not valid YAML", { cause });
  }
  const resources = (doc as { resources?: unknown })?.resources;
  if (!Array.isArray(resources)) throw new Error("encryption configuration has no resources list");
  const keys = new Map<string, Buffer>();
  for (const resource of resources) {
    const providers = (resource as { providers?: unknown })?.providers;
    if (!Array.isArray(providers)) continue;
    for (const provider of providers) {
      for (const name of SUPPORTED) {
        const list = (provider as Record<string, { keys?: unknown }>)?.[name]?.keys;
        if (!Array.isArray(list)) continue;
        for (const k of list as { name?: unknown; secret?: unknown }[]) {
          if (typeof k?.name !== "string" || typeof k.secret !== "string")
            throw new Error(`encryption configuration: ${name} key without name or secret`);
          keys.set(`${name}:${k.name}`, Buffer.from(k.secret, "base64"));
        }
      }
    }
  }
  return { keys };
}

/** Reads and parses an EncryptionConfiguration file. */
export async function readEncryptionConfig(path: string): Promise<EncryptionKeys> {
  return parseEncryptionConfig(await readFile(path, "utf8"));
}

/**
 * Decrypts a value encrypted at rest, given the etcd key it was stored under (aesgcm authenticates it as
 * additional data, so a value copied to another key does not open). Returns values without the
 * `k8s:enc:` prefix unchanged. Throws when the key is missing or the value does not decrypt.
 */
export function decryptValue(value: Buffer, etcdKey: string, config: EncryptionKeys): Buffer {
  const prefix = parseEncryptionPrefix(value);
  if (!prefix) return value;
  const key = config.keys.get(`${prefix.provider}:${prefix.keyName}`);
  const what = `${prefix.provider} key ${JSON.stringify(prefix.keyName)}`;
  if (!key) {
    if (!SUPPORTED.includes(prefix.provider))
      throw new Error(`cannot decrypt provider ${prefix.provider} (only ${SUPPORTED.join(", ")})`);
    throw new Error(`encryption configuration has no ${what}`);
  }
  try {
    return decryptPayload(prefix, key, value.subarray(prefix.length), etcdKey);
  } catch (cause) {
    throw new Error(`decrypt ${etcdKey} with ${what}`, { cause });
  }
}

function decryptPayload(prefix: EncryptionPrefix, key: Buffer, payload: Buffer, etcdKey: string): Buffer {
  switch (prefix.provider) {
    case "aescbc": {
      if (payload.length < 32 || payload.length % 16 !== 0)
        throw new Error("ciphertext is not a whole number of blocks");
      const d = createDecipheriv(`aes-${aesBits(key)}-cbc`, key, payload.subarray(0, 16));
      return Buffer.concat([d.update(payload.subarray(16)), d.final()]);
    }
    case "aesgcm": {
      if (payload.length < 12 + 16) throw new Error("ciphertext too short");
      const d = createDecipheriv(gcmName(key), key, payload.subarray(0, 12), { authTagLength: 16 });
      d.setAAD(Buffer.from(etcdKey, "utf8"));
      d.setAuthTag(payload.subarray(payload.length - 16));
      return Buffer.concat([d.update(payload.subarray(12, payload.length - 16)), d.final()]);
    }
    case "secretbox": {
      if (key.length !== 32) throw new Error("secretbox key must be 32 bytes");
      if (payload.length < 24) throw new Error("ciphertext too short");
      return secretboxOpen(payload.subarray(24), payload.subarray(0, 24), key);
    }
    default:
      throw new Error(`unsupported provider ${prefix.provider}`);
  }
}

function aesBits(key: Buffer): number {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32)
    throw new Error(`aes key of ${key.length} bytes (want 16, 24 or 32)`);
  return key.length * 8;
}

function gcmName(key: Buffer): "aes-128-gcm" | "aes-192-gcm" | "aes-256-gcm" {
  return `aes-${aesBits(key)}-gcm` as "aes-256-gcm";
}
