/**
 * Where a store's keys live in its bucket or container: the prefix they go under, how the store's location reads
 * in messages, and a key's full name there (the object key, blob name or object name the service knows).
 */
export class KeyPrefix {
  /** Without leading or trailing slashes; empty for the bucket's or container's root. */
  readonly prefix: string;
  /** `scheme://bucket/prefix` (or `scheme://bucket`), as messages and listings show the store. */
  readonly location: string;
  /** What every full name under the prefix starts with: `prefix/`, or nothing at the root. */
  readonly root: string;

  constructor(scheme: string, bucket: string, prefix = "") {
    this.prefix = prefix.replace(/^\/+|\/+$/g, "");
    this.location = this.prefix ? `${scheme}://${bucket}/${this.prefix}` : `${scheme}://${bucket}`;
    this.root = this.prefix ? `${this.prefix}/` : "";
  }

  /** The key's full name in the bucket; an empty key or one that starts with a slash is refused. */
  fullName(key: string): string {
    if (!key || key.startsWith("/")) throw new Error(`invalid key ${JSON.stringify(key)}`);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** The key as a location, for messages: `scheme://bucket/prefix/key`. */
  where(key: string): string {
    return `${this.location}/${key}`;
  }
}
