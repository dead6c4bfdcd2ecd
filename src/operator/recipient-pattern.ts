/**
 * The shape of an inline age recipient in an EtcdBackup spec, the one source for the CRD's `pattern`:
 * deploy/operator/crds/*.yaml carry this exact text (YAML cannot import it; test/operator/crds.test.ts checks they
 * do). The operator itself parses recipients when the backup runs (src/age/keys.ts), which accepts both kinds:
 * - `age1` + 58 bech32 characters: an X25519 key (32 bytes, 52 data + 6 checksum characters);
 * - `age1pq1` + 1952 bech32 characters: the post-quantum hybrid ML-KEM-768 + X25519 key (1216 bytes: 1946 data
 *   + 6 checksum characters), src/age/hybrid.ts.
 * `1` is bech32's separator and never a data character, so the two cannot be confused. The checksum itself is
 * checked where the key is parsed (src/age/keys.ts); the pattern only rejects what cannot be a key.
 * The API server compiles the pattern with Go's RE2, which refuses a repeat count above 1000 (found by applying the
 * CRDs to the real kube-apiserver: "invalid repeat count"), so the 1952 characters are written as 2 × 976.
 */
const BECH32 = "[qpzry9x8gf2tvdw0s3jn54khce6mua7l]";

export const RECIPIENT_PATTERN_TEXT = `^age1(${BECH32}{58}|pq1${BECH32}{976}${BECH32}{976})$`;
