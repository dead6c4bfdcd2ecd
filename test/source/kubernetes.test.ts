/**
 * The kubeconfig source's parts that need no server: the WebSocket frame codec, reading etcd's static pod, the
 * helper pod, loading kubeconfigs, and `save --kubeconfig`/`--out` through the one settings path. The whole path
 * against the real kube-apiserver is test/e2e/kubeconfig-save.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command } from "commander";
import { jobConfigFromCommand } from "../../src/cli/command-settings.ts";
import type { BackupJobConfig } from "../../src/config/schema.ts";
import { Hinted, UsageError } from "../../src/errors.ts";
import { etcdTargetFromPod, type Pod } from "../../src/source/kubernetes/etcd-pod.ts";
import {
  helperCommand,
  helperPodManifest,
  helperStartProblem,
} from "../../src/source/kubernetes/helper-pod.ts";
import { KubeApi } from "../../src/source/kubernetes/kube-api.ts";
import { encodeFrame, FrameReader, OPCODE } from "../../src/source/kubernetes/websocket.ts";
import { assertOk, runCli } from "../fixtures/cli.ts";
import { SeededRandom } from "../fixtures/seeded-random.ts";

const dir = mkdtempSync(join(tmpdir(), "etcd-backup-kubernetes-unit-"));

/** kubeadm's etcd static pod (v1.35), as its mirror pod reads back. */
function kubeadmEtcdPod(): Pod {
  return {
    metadata: { name: "etcd-cp-1", namespace: "kube-system" },
    spec: {
      nodeName: "cp-1",
      containers: [
        {
          name: "etcd",
          command: [
            "etcd",
            "--advertise-client-urls=https://10.0.0.5:2379",
            "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
            "--client-cert-auth=true",
            "--data-dir=/var/lib/etcd",
            "--key-file=/etc/kubernetes/pki/etcd/server.key",
            "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.5:2379",
            "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
          ],
          volumeMounts: [
            { name: "etcd-data", mountPath: "/var/lib/etcd" },
            { name: "etcd-certs", mountPath: "/etc/kubernetes/pki/etcd" },
          ],
        },
      ],
      volumes: [
        { name: "etcd-certs", hostPath: { path: "/etc/kubernetes/pki/etcd", type: "DirectoryOrCreate" } },
        { name: "etcd-data", hostPath: { path: "/var/lib/etcd", type: "DirectoryOrCreate" } },
      ],
    },
  };
}

describe("WebSocket frames", () => {
  test("masked and unmasked frames of every length class survive any split of the byte stream", () => {
    const random = new SeededRandom(Number(process.env.ETCD_BACKUP_TEST_SEED ?? Date.now() % 2 ** 31));
    for (const size of [0, 1, 125, 126, 65535, 65536, 200_000]) {
      for (const mask of [true, false]) {
        const payload = random.bytes(size);
        const bytes = Buffer.concat([
          encodeFrame(OPCODE.binary, payload, mask),
          encodeFrame(OPCODE.ping, Buffer.from("p"), mask),
        ]);
        const reader = new FrameReader();
        const got: { opcode: number; payload: Buffer }[] = [];
        for (let at = 0; at < bytes.length; ) {
          const n = 1 + Math.floor(random.next() * 5000);
          got.push(...reader.push(bytes.subarray(at, at + n)));
          at += n;
        }
        assert.equal(got.length, 2, `size ${size} mask ${mask} (seed ${random.seed})`);
        assert.equal(got[0]!.opcode, OPCODE.binary);
        assert.ok(got[0]!.payload.equals(payload), `payload of ${size} bytes (seed ${random.seed})`);
        assert.equal(got[1]!.opcode, OPCODE.ping);
      }
    }
  });

  test("a fragmented message is joined, with a control frame between its fragments", () => {
    const first = encodeFrame(OPCODE.binary, Buffer.from("ab"), false);
    first[0] = first[0]! & 0x7f; // FIN off
    const ping = encodeFrame(OPCODE.ping, Buffer.alloc(0), false);
    const last = encodeFrame(OPCODE.continuation, Buffer.from("cd"), false);
    const got = new FrameReader().push(Buffer.concat([first, ping, last]));
    assert.deepEqual(
      got.map((m) => [m.opcode, m.payload.toString()]),
      [
        [OPCODE.ping, ""],
        [OPCODE.binary, "abcd"],
      ],
    );
  });

  test("a continuation without a message is a protocol error", () => {
    assert.throws(() => new FrameReader().push(encodeFrame(OPCODE.continuation, Buffer.from("x"), false)));
  });
});

describe("etcd's static pod", () => {
  test("kubeadm's pod: the loopback client URL, etcd's own certificate pair, the hostPath that holds them", () => {
    const t = etcdTargetFromPod(kubeadmEtcdPod());
    assert.deepEqual(t, {
      pod: "etcd-cp-1",
      node: "cp-1",
      endpoint: "https://127.0.0.1:2379",
      cacert: "/etc/kubernetes/pki/etcd/ca.crt",
      cert: "/etc/kubernetes/pki/etcd/server.crt",
      key: "/etc/kubernetes/pki/etcd/server.key",
      mounts: [
        { name: "etcd-certs", hostPath: "/etc/kubernetes/pki/etcd", mountPath: "/etc/kubernetes/pki/etcd" },
      ],
    });
  });

  test("flags given as separate words, and only an advertised URL", () => {
    const pod = kubeadmEtcdPod();
    pod.spec.containers[0]!.command = [
      "etcd",
      "--advertise-client-urls",
      "https://10.0.0.5:2379",
      "--cert-file",
      "/etc/kubernetes/pki/etcd/server.crt",
      "--key-file",
      "/etc/kubernetes/pki/etcd/server.key",
      "--trusted-ca-file",
      "/etc/kubernetes/pki/etcd/ca.crt",
    ];
    const t = etcdTargetFromPod(pod);
    assert.equal(t.endpoint, "https://10.0.0.5:2379");
    assert.equal(t.key, "/etc/kubernetes/pki/etcd/server.key");
  });

  test("etcd without client TLS, or certificates outside a hostPath volume, are named", () => {
    const plain = kubeadmEtcdPod();
    plain.spec.containers[0]!.command = plain.spec.containers[0]!.command!.filter(
      (f) => !f.startsWith("--cert-file"),
    );
    assert.throws(
      () => etcdTargetFromPod(plain),
      (e: Error) => e instanceof Hinted && /without --cert-file/.test(e.message),
    );
    const elsewhere = kubeadmEtcdPod();
    elsewhere.spec.volumes = elsewhere.spec.volumes!.filter((v) => v.name !== "etcd-certs");
    assert.throws(
      () => etcdTargetFromPod(elsewhere),
      (e: Error) => e instanceof Hinted && /ca\.crt is not in a hostPath volume/.test(e.message),
    );
  });
});

describe("the helper pod", () => {
  test("pinned to etcd's node, host network, control-plane toleration, certificates read-only, no token", () => {
    const target = etcdTargetFromPod(kubeadmEtcdPod());
    const pod = helperPodManifest(
      target,
      "registry.example/etcd-backup:1",
      "etcd-backup-helper-x",
      "kube-system",
    );
    const spec = pod.spec as Record<string, unknown> & Pod["spec"];
    assert.equal(spec.nodeName, "cp-1");
    assert.equal(spec.hostNetwork, true);
    assert.equal(spec.automountServiceAccountToken, false);
    assert.equal(spec.restartPolicy, "Never");
    assert.ok(
      (spec.tolerations as { key: string }[]).some((t) => t.key === "node-role.kubernetes.io/control-plane"),
    );
    const c = spec.containers[0]!;
    assert.equal(c.image, "registry.example/etcd-backup:1");
    assert.deepEqual(c.volumeMounts, [
      { name: "etcd-certs", mountPath: "/etc/kubernetes/pki/etcd", readOnly: true },
    ]);
    assert.deepEqual(spec.volumes, [
      { name: "etcd-certs", hostPath: { path: "/etc/kubernetes/pki/etcd", type: "Directory" } },
    ]);
    assert.deepEqual(helperCommand(target), [
      "etcd-backup",
      "save",
      "--source",
      "etcd",
      "--endpoints",
      "https://127.0.0.1:2379",
      "--cacert",
      "/etc/kubernetes/pki/etcd/ca.crt",
      "--cert",
      "/etc/kubernetes/pki/etcd/server.crt",
      "--key",
      "/etc/kubernetes/pki/etcd/server.key",
      "--out",
      "-",
    ]);
  });

  test("an image that cannot be pulled is a start problem", () => {
    const pod = kubeadmEtcdPod();
    pod.status = {
      phase: "Pending",
      containerStatuses: [
        { name: "snapshot", state: { waiting: { reason: "ImagePullBackOff", message: "not found" } } },
      ],
    };
    assert.equal(helperStartProblem(pod), "ImagePullBackOff: not found");
  });
});

describe("kubeconfigs", () => {
  const kubeconfig = (user: string, extra = "") => {
    const path = join(dir, `kc-${Math.random().toString(36).slice(2)}`);
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: c",
        "  cluster: {server: 'https://127.0.0.1:6443'}",
        "users:",
        `- name: u`,
        `  user: ${user}`,
        "contexts:",
        "- name: ctx",
        "  context: {cluster: c, user: u}",
        extra,
      ].join("\n"),
    );
    return path;
  };

  test("the current context, or --context; a missing one is a usage error listing the known ones", () => {
    const file = kubeconfig("{token: abcd}", "current-context: ctx");
    const api = KubeApi.load({ kubeconfig: file, env: {} });
    assert.equal(api.server, "https://127.0.0.1:6443");
    assert.deepEqual(api.secretValues(), ["abcd"]);
    assert.match(api.description, /context ctx of /);
    assert.throws(
      () => KubeApi.load({ kubeconfig: file, context: "other", env: {} }),
      (e: Error) =>
        e instanceof UsageError && /has no context "other"/.test(e.message) && e.hint === "use one of: ctx",
    );
    const none = kubeconfig("{token: abcd}");
    assert.throws(() => KubeApi.load({ kubeconfig: none, env: {} }), /has no current context/);
    assert.equal(
      KubeApi.load({ kubeconfig: none, context: "ctx", env: {} }).server,
      "https://127.0.0.1:6443",
    );
  });

  test("KUBECONFIG lists files merged as kubectl merges them", () => {
    const a = kubeconfig("{token: abcd}");
    const b = kubeconfig("{token: efgh}", "current-context: ctx");
    const api = KubeApi.load({ env: { KUBECONFIG: `${join(dir, "absent")}:${a}:${b}` } });
    assert.match(api.description, /context ctx of /);
  });

  test("auth-provider and basic authentication are refused in one line", () => {
    assert.throws(
      () =>
        KubeApi.load({
          kubeconfig: kubeconfig("{auth-provider: {name: gcp}}", "current-context: ctx"),
          env: {},
        }),
      (e: Error) =>
        e instanceof UsageError && /auth-provider "gcp", which kubectl dropped in 1.26/.test(e.message),
    );
    assert.throws(
      () =>
        KubeApi.load({
          kubeconfig: kubeconfig("{username: a, password: b}", "current-context: ctx"),
          env: {},
        }),
      /basic authentication/,
    );
    assert.throws(() => KubeApi.load({ kubeconfig: join(dir, "nope"), env: {} }), /does not exist/);
  });
});

describe("hold (the helper pod's main process)", () => {
  test("waits for --for, ends at once on SIGTERM, and is not listed in the help", async () => {
    const started = Date.now();
    assertOk(await runCli(["hold", "--for", "1s"]));
    assert.ok(Date.now() - started >= 1000);
    let pid = 0;
    const held = runCli(["hold", "--for", "1h"], { onSpawn: (p) => (pid = p), timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 1500));
    process.kill(pid, "SIGTERM");
    assertOk(await held);
    const help = await runCli(["--help"]);
    assert.doesNotMatch(help.stdout, /\bhold\b/);
  });
});

describe("save --kubeconfig and --out through the one settings path", () => {
  async function viaSave(args: string[]): Promise<BackupJobConfig> {
    const program = new Command().exitOverride();
    const module = await import("../../src/cli/commands/save.ts");
    const saved = { ...process.env };
    for (const k of Object.keys(process.env))
      if (/^(ETCD|AWS|ETCDCTL|TALOS|BUCKET|CLUSTER|S3_|AGE_|KUBECONFIG)/.test(k)) delete process.env[k];
    try {
      module.register(program);
      const cmd = program.commands.find((c) => c.name() === "save")!;
      let out: BackupJobConfig | undefined;
      cmd.action(async (flags: Record<string, unknown>) => {
        out = await jobConfigFromCommand(cmd, flags, process.env);
      });
      await program.parseAsync(["node", "etcd-backup", "save", ...args]);
      return out!;
    } finally {
      process.env = saved;
    }
  }

  test("--kubeconfig chooses the kubernetes source; --context is the kubeconfig's; --out needs no key", async () => {
    const c = await viaSave([
      "--kubeconfig",
      "/k",
      "--context",
      "admin@c",
      "--image",
      "r/e:1",
      "--out",
      "x.db",
    ]);
    assert.deepEqual(c.source, { kind: "kubernetes", kubeconfig: "/k", context: "admin@c", image: "r/e:1" });
    assert.equal(c.output, "x.db");
    assert.deepEqual(c.encryption, { kind: "none" });
  });

  test("--to keeps the usual backup rules (a recipient is required)", async () => {
    await assert.rejects(viaSave(["--kubeconfig", "/k", "--to", dir]), /--recipient: no age recipient given/);
    const c = await viaSave(["--source", "kubernetes", "--to", dir, "--no-encrypt"]);
    assert.deepEqual(c.source, { kind: "kubernetes" });
  });

  test("contradictions are named", async () => {
    await assert.rejects(viaSave(["--out", "x", "--to", dir]), /--out: cannot be combined with --to/);
    await assert.rejects(
      viaSave([
        "--out",
        "x",
        "--recipient",
        "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
      ]),
      /--recipient: --out writes a plain, unencrypted snapshot/,
    );
    await assert.rejects(viaSave(["--image", "x", "--out", "y"]), /--image: only for the kubeconfig backup/);
    await assert.rejects(
      viaSave(["--kubeconfig", "/k", "--source", "talos", "--out", "y"]),
      /--kubeconfig: cannot be combined with --source talos/,
    );
  });
});
