/** One recipient stanza of an age header: `-> type args…` followed by a base64 body. */
export interface Stanza {
  type: string;
  args: string[];
  body: Uint8Array;
}

/** Something the file key can be encrypted to. */
export interface Recipient {
  /** Wraps the 16-byte file key into the stanzas that go into the header. */
  wrapFileKey(fileKey: Uint8Array): Stanza[] | Promise<Stanza[]>;
  /** Public description for manifests; never a secret. */
  readonly kind: "X25519" | "scrypt" | "mlkem768x25519";
  /** The `age1…` public key of an X25519 recipient, or the `age1pq1…` key of a post-quantum one. */
  readonly publicKey?: string;
}

/** Something that can recover the file key from the header's stanzas. */
export interface Identity {
  /**
   * Returns the file key, or null when none of the stanzas is addressed to this identity.
   * Throws an `AgeDecryptError` ("header") when a stanza of its own type is malformed.
   */
  unwrapFileKey(stanzas: Stanza[]): Uint8Array | null | Promise<Uint8Array | null>;
}
