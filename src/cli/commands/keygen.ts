import { open } from "node:fs/promises";
import type { Command } from "commander";
import { Hinted } from "../../errors.ts";

export function register(program: Command): void {
  program
    .command("keygen")
    .description(
      "generate an age identity, X25519 or with --pq post-quantum (age-keygen's file format); the public key goes to stderr",
    )
    .option("-o, --output <file>", "write the identity to this file (mode 0600, never overwritten)")
    .option(
      "--pq",
      "post-quantum hybrid ML-KEM-768 + X25519 key pair (age1pq1…, as age-keygen -pq; age 1.3 or later reads it)",
    )
    .action(async (flags: { output?: string; pq?: boolean }) => {
      const { generateIdentity, identityFileText } = await import("../../age/index.ts");
      const gen = generateIdentity({ pq: flags.pq === true });
      const text = identityFileText(gen);
      if (flags.output) {
        let handle: import("node:fs/promises").FileHandle;
        try {
          handle = await open(flags.output, "wx", 0o600);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "EEXIST")
            throw new Hinted(
              `${flags.output} already exists`,
              "choose another -o file; keys are never overwritten",
            );
          throw new Error(`cannot create ${flags.output}: ${code ?? (err as Error).message}`);
        }
        try {
          await handle.writeFile(text);
          await handle.sync();
        } finally {
          await handle.close();
        }
      } else {
        process.stdout.write(text);
      }
      process.stderr.write(`Public key: ${gen.recipient}\n`);
    });
}
