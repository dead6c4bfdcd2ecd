/**
 * Values the apiserver encrypted at rest start with `k8s:enc:<provider>:<version>:<key name>:`
 * (`k8s:enc:aescbc:v1:key1:`, `k8s:enc:kms:v2:my-kms:`); everything after the prefix is the provider's payload.
 */

const MARKER = "k8s:enc:";

/** The provider and key name of an encrypted value, and where its payload starts. */
export interface EncryptionPrefix {
  provider: string;
  version: string;
  keyName: string;
  /** Length of the whole prefix, trailing colon included. */
  length: number;
}

/** Parses the prefix of an encrypted-at-rest value; null when the value is not encrypted. */
export function parseEncryptionPrefix(value: Uint8Array): EncryptionPrefix | null {
  if (value.length < MARKER.length) return null;
  for (let i = 0; i < MARKER.length; i++) if (value[i] !== MARKER.charCodeAt(i)) return null;
  const fields: string[] = [];
  let start = MARKER.length;
  // Key names are short; a colon within the first 256 bytes ends each field.
  for (let i = start; i < Math.min(value.length, start + 256) && fields.length < 3; i++) {
    if (value[i] === 0x3a) {
      fields.push(Buffer.from(value.buffer, value.byteOffset + start, i - start).toString("latin1"));
      start = i + 1;
    }
  }
  if (fields.length < 3) return null;
  return { provider: fields[0]!, version: fields[1]!, keyName: fields[2]!, length: start };
}
