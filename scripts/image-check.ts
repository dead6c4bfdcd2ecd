/**
 * Builds the container image (scripts/build-image.ts) and runs it here, without Docker: podman with a private
 * storage directory (removed at the end), trying crun and then runc, as the manifests run it (user 65532,
 * read-only root filesystem, all capabilities dropped, no new privileges) on the host network:
 *   1. the archive's config (user, entrypoint, env) and that the image holds no shell;
 *   2. `--version`, and its start-up time;
 *   3. `save` from a real etcd (loopback) into a directory volume, `restore` from it, checked with etcdctl;
 *   4. talos-backup's environment and a Talos ServiceAccount's talosconfig mounted where Talos mounts it,
 *      against the Talos stand-in (test/fixtures/talos-standin.ts) and an S3 server: the stored snapshot is
 *      the one the stand-in served.
 * When no container can start here, it says which runtime failed with what, and proves what can be proven:
 * the binary inside the layer runs in a chroot of the image's filesystem as user 65532.
 *
 *   npm run image:check  [-- --no-container: skip podman, prove what a chroot of the layer can]
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type EtcdServer, fillKeys, startEtcd } from "../test/fixtures/etcd-server.ts";
import { issueCert, makePki } from "../test/fixtures/pki.ts";
import { startS3Server, type TestS3Server } from "../test/fixtures/s3-server.ts";
import { startTalosStandIn, type TalosStandIn, talosconfigYaml } from "../test/fixtures/talos-standin.ts";
import { binaryPath } from "./build-binary.ts";
import { buildImage, CMD, ENTRYPOINT, IMAGE_ENV } from "./build-image.ts";

const run = promisify(execFile);
const IMAGE_USER = 65532;

let failures = 0;
function check(what: string, ok: boolean, detail = ""): void {
  process.stdout.write(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}\n`);
  if (!ok) failures++;
}
function section(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

const work = mkdtempSync(join(tmpdir(), "etcd-backup-image-check-"));
// Private storage (nothing left in the machine's), and cgroupfs: there is no systemd to ask for cgroups.
const storage = [
  "--root",
  join(work, "podman", "root"),
  "--runroot",
  join(work, "podman", "run"),
  "--cgroup-manager",
  "cgroupfs",
];
// The sandboxes these checks run in allow no raising of limits: ask for the ones a container gets anyway.
const limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];
// As deploy/ runs it: non-root (the image's user), read-only root, no capabilities, no new privileges.
const hardening = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"];

let etcd: EtcdServer | undefined;
let s3: TestS3Server | undefined;
let talos: TalosStandIn | undefined;

try {
  section("build");
  const image = await buildImage({ log: (line) => process.stdout.write(`build-image: ${line}\n`) });
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(
    `${image.archive}\n  ${image.reference} manifest ${image.manifestDigest}\n  layer ${mib(image.layerBytes)} gzip, ${mib(image.unpackedBytes)} unpacked; archive built in ${image.seconds.toFixed(1)} s\n`,
  );

  section("the archive's config");
  const config = JSON.parse(
    (await run("skopeo", ["inspect", "--config", `oci-archive:${image.archive}`])).stdout,
  ).config;
  process.stdout.write(
    `${JSON.stringify({ User: config.User, Entrypoint: config.Entrypoint, Cmd: config.Cmd, Env: config.Env })}\n`,
  );
  check("user is 65532:65532", config.User === `${IMAGE_USER}:${IMAGE_USER}`);
  check("entrypoint is the binary", JSON.stringify(config.Entrypoint) === JSON.stringify(ENTRYPOINT));
  check(
    "cmd is save (talos-backup's CronJob gives no argument)",
    JSON.stringify(config.Cmd) === JSON.stringify(CMD),
  );
  check("env", JSON.stringify(config.Env) === JSON.stringify(IMAGE_ENV));
  const rootfs = join(work, "rootfs");
  await unpackLayer(image.archive, rootfs);
  const files = execFileSync("find", [".", "-type", "f"], { cwd: rootfs, encoding: "utf8" })
    .trim()
    .split("\n")
    .sort();
  process.stdout.write(`files:\n  ${files.join("\n  ")}\n`);
  check("no shell, no package manager", !files.some((f) => /\/(sh|bash|dash|apt|dpkg|npm|node)$/.test(f)));
  const certs =
    readFileSync(join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt"), "utf8").split(
      "-----BEGIN CERTIFICATE-----",
    ).length - 1;
  const mozilla = readdirSync("/usr/share/ca-certificates/mozilla").filter((f) => f.endsWith(".crt")).length;
  check(
    "CA bundle: Debian's Mozilla list only, no CA added to this machine",
    certs === mozilla,
    `${certs} certificates, ${mozilla} in /usr/share/ca-certificates/mozilla`,
  );

  section("run");
  const ref = `docker.io/library/${image.reference}`;
  const runner = process.argv.includes("--no-container") ? undefined : await findRunner(image.archive, ref);
  if (!runner) {
    section(
      `${process.argv.includes("--no-container") ? "--no-container" : "no container runtime works here"}: what can be proven without one`,
    );
    etcd = await startEtcd();
    await fillKeys(etcd, 5000, { prefix: "/registry/configmaps/default/cm-", valueSize: 400 });
    await chrootChecks(rootfs, etcd);
  } else {
    process.stdout.write(`running with: podman ${runner.join(" ")}\n`);
    const podmanRun = async (args: string[], env: Record<string, string> = {}) => {
      const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
      return await run(
        "podman",
        [...storage, "run", "--rm", "--pull=never", ...runner, ...limits, ...hardening].concat([
          "--network",
          "host",
          ...envArgs,
          ...args,
        ]),
        { maxBuffer: 1 << 24 },
      );
    };

    const times: number[] = [];
    let version = "";
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      version = (await podmanRun([ref, "--version"])).stdout.trim();
      times.push((performance.now() - t0) / 1000);
    }
    const expected = JSON.parse(
      readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"),
    ).version;
    check(
      `--version (podman run, whole container start: ${times.map((t) => `${t.toFixed(2)} s`).join(", ")})`,
      version === expected,
      version,
    );

    section("save from a real etcd on the host network into a directory volume");
    etcd = await startEtcd();
    await fillKeys(etcd, 5000, { prefix: "/registry/configmaps/default/cm-", valueSize: 400 });
    const backups = join(work, "backups");
    const keys = join(work, "keys");
    mkdirSync(backups);
    mkdirSync(keys);
    chownSync(backups, IMAGE_USER, IMAGE_USER);
    await run("age-keygen", ["-o", join(keys, "key.txt")]);
    execFileSync("chmod", ["0644", join(keys, "key.txt")]);
    const recipient = /public key: (age1\w+)/.exec(readFileSync(join(keys, "key.txt"), "utf8"))![1]!;
    const volumes = ["--volume", `${backups}:/backups`, "--volume", `${keys}:/keys:ro`];
    const save = await podmanRun([
      ...volumes,
      ref,
      "save",
      "--endpoints",
      etcd.endpoint,
      "--to",
      "/backups",
      "--cluster",
      "image",
      "--recipient",
      recipient,
    ]);
    process.stdout.write(save.stdout + save.stderr);
    check(
      "save wrote a backup and its manifest",
      /^saved image-\S+\.snap\.zst\.age to \/backups/.test(save.stdout),
    );
    const restore = await podmanRun([
      ...volumes,
      ref,
      "restore",
      "latest",
      "--to",
      "/backups",
      "-i",
      "/keys/key.txt",
      "--to-file",
      "/backups/restored.db",
    ]);
    process.stdout.write(restore.stdout + restore.stderr);
    // etcd 3.5 and later read a snapshot file with etcdutl (3.6's etcdctl has no `snapshot status`); 3.4 with etcdctl.
    const server = etcd;
    const snapshotStatus = async (file: string) =>
      JSON.parse(
        server.peer.etcdutl
          ? (await run(server.peer.etcdutl, ["snapshot", "status", "-w", "json", file])).stdout
          : await server.ctl(["snapshot", "status", "-w", "json", file]),
      );
    const status = await snapshotStatus(join(backups, "restored.db"));
    const direct = join(work, "direct.db");
    await etcd.ctl(["snapshot", "save", direct]);
    const directStatus = await snapshotStatus(direct);
    check(
      `the restored snapshot is etcd's (${server.peer.etcdutl ? "etcdutl" : "etcdctl"} snapshot status: hash, revision, keys)`,
      status.hash === directStatus.hash &&
        status.revision === directStatus.revision &&
        status.totalKey === directStatus.totalKey,
      `${JSON.stringify(status)} vs etcdctl snapshot save ${JSON.stringify(directStatus)}`,
    );

    section(
      "talos-backup's environment against the Talos stand-in, talosconfig at /var/run/secrets/talos.dev",
    );
    mkdirSync(join(work, "pki"));
    const pki = makePki(join(work, "pki"));
    const cert = issueCert(pki, "backup", { cn: "talos-backup", usage: "client", org: "os:etcd:backup" });
    talos = await startTalosStandIn({
      caCert: pki.caCert,
      serverCert: pki.serverCert,
      serverKey: pki.serverKey,
      etcd,
    });
    s3 = await startS3Server();
    await s3.createBucket("talos-backups");
    const serviceAccount = join(work, "talos-sa");
    mkdirSync(serviceAccount);
    // What Talos mounts for a ServiceAccount: one context named after the SA's namespace, no nodes.
    writeFileSync(
      join(serviceAccount, "config"),
      talosconfigYaml({ context: "prod-lab", endpoints: [talos.endpoint], caCert: pki.caCert, ...cert }),
    );
    execFileSync("chmod", ["0644", join(serviceAccount, "config")]);
    const talosRun = await podmanRun(["--volume", `${serviceAccount}:/var/run/secrets/talos.dev:ro`, ref], {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: "us-west-2",
      CUSTOM_S3_ENDPOINT: s3.endpoint,
      BUCKET: "talos-backups",
      AGE_X25519_PUBLIC_KEY: recipient,
    });
    process.stdout.write(talosRun.stdout + talosRun.stderr);
    const key = /^saved (\S+) to s3:\/\/talos-backups\/prod-lab/.exec(talosRun.stdout)?.[1];
    check(
      "no argument, the image's CMD: prod-lab/<cluster>-<time>.snap.age in the bucket",
      /^prod-lab-\S+Z\.snap\.age$/.test(key ?? ""),
      key,
    );
    if (key) {
      const restored = join(work, "talos.db");
      await run(
        binaryPath("amd64"),
        [
          "restore",
          key,
          "--to",
          "s3://talos-backups/prod-lab",
          "--s3-endpoint",
          s3.endpoint,
          "-i",
          join(keys, "key.txt"),
          "--to-file",
          restored,
        ],
        {
          env: {
            PATH: "/usr/bin:/bin",
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
            AWS_REGION: "us-west-2",
          },
        },
      );
      const sha = createHash("sha256").update(readFileSync(restored)).digest("hex");
      check(
        "the stored snapshot is the one the Talos stand-in served (sha256)",
        sha === talos.served.at(-1)?.sha256,
        sha,
      );
    }
  }
} catch (err) {
  failures++;
  const e = err as Error & { stderr?: string };
  process.stdout.write(`FAIL ${e.message}${e.stderr ? `\n${e.stderr}` : ""}\n`);
} finally {
  await talos?.stop();
  await s3?.stop();
  await etcd?.destroy();
  await run("podman", [...storage, "rmi", "--all", "--force"]).catch(() => {});
  await run("podman", [...storage, "system", "reset", "--force"]).catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
process.stdout.write(`\n${failures === 0 ? "all checks passed" : `${failures} check(s) failed`}\n`);
process.exitCode = failures === 0 ? 0 : 1;

/** The first podman runtime that starts the image here; prints why each one that does not fails. */
async function findRunner(archive: string, ref: string): Promise<string[] | undefined> {
  try {
    await run("podman", [...storage, "load", "--quiet", "-i", archive]);
  } catch (err) {
    const message = ((err as { stderr?: string }).stderr || String(err)).trim().split("\n").at(-1);
    process.stdout.write(`podman load: ${message}\n`);
    return undefined;
  }
  const candidates: string[][] = [[], ["--runtime", "crun", "--cgroups", "disabled"], ["--runtime", "runc"]];
  for (const runtime of candidates) {
    try {
      await run("podman", [
        ...storage,
        "run",
        "--rm",
        "--pull=never",
        ...runtime,
        ...limits,
        ref,
        "--version",
      ]);
      return runtime;
    } catch (err) {
      const message = ((err as { stderr?: string }).stderr ?? String(err)).trim().split("\n").at(-1);
      process.stdout.write(
        `podman run ${runtime.length ? runtime.join(" ") : "(default runtime)"}: ${message}\n`,
      );
    }
  }
  return undefined;
}

async function unpackLayer(archive: string, rootfs: string): Promise<void> {
  const layout = join(work, "layout");
  mkdirSync(layout);
  mkdirSync(rootfs);
  await run("tar", ["-xf", archive, "-C", layout]);
  const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
  const blob = (digest: string) => join(layout, "blobs", "sha256", digest.replace(/^sha256:/, ""));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8"));
  for (const layer of manifest.layers) await run("tar", ["-xzf", blob(layer.digest), "-C", rootfs]);
}

/**
 * Without a container runtime: the layer's filesystem as the root of a chroot in its own mount and PID
 * namespaces, as the image's user, with an empty environment but the image's: `--version`, then `save` from
 * the real etcd (the chroot shares this machine's network) into the image's /tmp and `list`.
 */
async function chrootChecks(rootfs: string, source: EtcdServer): Promise<void> {
  const chroot = [
    "--mount",
    "--pid",
    "--fork",
    "/usr/sbin/chroot",
    `--userspec=${IMAGE_USER}:${IMAGE_USER}`,
    rootfs,
  ];
  const env = Object.fromEntries(IMAGE_ENV.map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
  const inImage = async (args: string[]) =>
    await run("/usr/bin/unshare", [...chroot, ...ENTRYPOINT, ...args], { env });
  const version = (await inImage(["--version"])).stdout.trim();
  check("the layer's binary runs in a chroot of the layer as 65532 (--version)", version.length > 0, version);
  const save = await inImage([
    "save",
    "--endpoints",
    source.endpoint,
    "--to",
    "/tmp",
    "--cluster",
    "chroot",
    "--no-encrypt",
  ]);
  process.stdout.write(save.stdout + save.stderr);
  check(
    "save from the real etcd inside the chroot",
    /^saved chroot-\S+\.snap\.zst to \/tmp/.test(save.stdout),
  );
  const list = await inImage(["list", "--to", "/tmp"]);
  process.stdout.write(list.stdout);
  check("list inside the chroot", /chroot-\S+\.snap\.zst/.test(list.stdout));
}
