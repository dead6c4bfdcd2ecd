#!/usr/bin/env node
// The npm package's `etcd-backup` command. It checks the runtime before loading anything of the CLI, so an
// old Node says in one line what is needed instead of failing on a missing zlib export with a stack trace.
// Keep it loadable by old Node (any version that runs ES modules, 12.20 on): no project import at the top,
// no syntax newer than ES2019.
import zlib from "node:zlib";

const NEEDED = "Node.js 22.15 or newer with zlib zstd";
const ALTERNATIVES =
  "install the standalone binary or use the container image, which bring their own Node.js: see Install in the README";

const found = process.versions.node;
const [major, minor] = found.split(".").map(Number);
const recentEnough = major > 22 || (major === 22 && minor >= 15);
const hasZstd =
  typeof zlib.createZstdCompress === "function" && typeof zlib.createZstdDecompress === "function";

if (recentEnough && hasZstd) {
  import("../dist/cli/v8-flags.js")
    .then(relaunchWithV8Flags)
    .then(() => import("../dist/cli/main.js"))
    .catch(cannotLoad);
} else {
  const what = recentEnough ? `Node.js ${found} without zlib zstd` : `Node.js ${found}`;
  process.stderr.write(
    `etcd-backup: unsupported runtime: needs ${NEEDED}, found ${what} (${ALTERNATIVES})\n`,
  );
  process.exitCode = 1;
}

// The commands that stream a snapshot run with etcd-backup's V8 options (dist/cli/v8-flags.js: a small young
// generation, which keeps a save within a 128 MiB pod) without the user setting NODE_OPTIONS: Node is
// re-executed in place with them (process.execve: the same process id, nothing left behind). Where that is not
// possible (no process.execve, or it fails) the command runs as it is, with more memory.
function relaunchWithV8Flags(flags) {
  const argv = flags.relaunchArgv(process.execPath, process.argv, process.execArgv, process.env.NODE_OPTIONS);
  if (argv === null || typeof process.execve !== "function") return;
  try {
    process.execve(process.execPath, argv, process.env);
  } catch (_err) {
    // Running on without the flags is better than not running.
  }
}

function cannotLoad(err) {
  if (err instanceof Error && err.code === "ERR_MODULE_NOT_FOUND") {
    const first = err.message.split("\n")[0];
    const hint = "reinstall the package; in a git clone run npm install, then npm run build";
    process.stderr.write(`etcd-backup: the installation is incomplete: ${first} (${hint})\n`);
  } else {
    process.stderr.write(
      `etcd-backup: cannot load the CLI: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
  }
  process.exitCode = 1;
}
