import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "node:test";
import { loopbackPorts } from "../src/loopback-port.ts";

const ephemeralStart = (() => {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  } catch {
    return 0;
  }
})();

test("ports are distinct, bindable, below the kernel's ephemeral range and the NodePort range, and not handed out twice", async () => {
  const first = await loopbackPorts(20);
  const second = await loopbackPorts(20);
  const all = [...first, ...second];
  assert.equal(new Set(all).size, 40);
  if (ephemeralStart > 11_000)
    for (const p of all) assert.ok(p >= 10_000 && p < Math.min(ephemeralStart, 30_000), `${p}`);
  for (const port of first.slice(0, 5)) {
    await new Promise<void>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
    });
  }
});
