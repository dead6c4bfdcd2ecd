/**
 * The measured age driver of bench/run.ts: encrypts a file to one recipient through src/age's stream, as save
 * does (1 MiB reads in, file out). Kept apart from run.ts so that its process loads only src/age.
 *   node bench/age-encrypt.ts INPUT OUTPUT age1...
 */
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createEncryptStream, parseRecipient } from "../src/age/index.ts";

const [input, output, recipient] = process.argv.slice(2) as [string, string, string];
await pipeline(
  createReadStream(input, { highWaterMark: 1 << 20 }),
  createEncryptStream([parseRecipient(recipient)]),
  createWriteStream(output),
);
