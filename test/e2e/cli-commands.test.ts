/**
 * End to end: the built `mos` binary, run as a user would, against the real device agent (`mos device`)
 * over HTTP and WebSocket: ls, put, get, rm, call, config-get, config-set, info, reboot, errors and exit
 * codes, --json, MOS_* environment variables.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runMos } from "../helpers/mos.js";
import { type AgentProcess, startAgent } from "../cli/agent.js";

let agent: AgentProcess;
let tmp: string;

before(async () => {
  agent = await startAgent();
  tmp = mkdtempSync(join(tmpdir(), "remos-e2e-cli-"));
});
after(async () => {
  await agent?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const lines = (s: string): string[] => s.split(/\r?\n/).filter(Boolean);

for (const kind of ["http", "ws"] as const) {
  describe(`mos commands over ${kind}`, () => {
    const port = (): string => (kind === "http" ? agent.http : agent.ws);
    const mos = (...args: string[]) => runMos(["--port", port(), "--timeout", "10s", ...args], { timeoutMs: 30_000 });

    it("put, ls, ls -l, get, rm", async () => {
      const local = join(tmp, `init-${kind}.js`);
      writeFileSync(local, "print('hello');\n");
      let r = await mos("put", local);
      assert.equal(r.code, 0, r.stderr);
      r = await mos("ls");
      assert.equal(r.code, 0, r.stderr);
      assert.ok(lines(r.stdout).includes(`init-${kind}.js`));
      assert.deepEqual(lines(r.stdout), [...lines(r.stdout)].sort());
      assert.ok(r.stdout.endsWith("\r\n"), "mos line ends");
      r = await mos("ls", "-l");
      assert.ok(lines(r.stdout).includes(`init-${kind}.js 16`), r.stdout);
      r = await mos("get", `init-${kind}.js`);
      assert.equal(r.stdout, "print('hello');\n");
      r = await mos("rm", `init-${kind}.js`);
      assert.equal(r.code, 0, r.stderr);
      r = await mos("ls");
      assert.ok(!lines(r.stdout).includes(`init-${kind}.js`));
    });

    it("call Sys.GetInfo prints indented JSON; info prints a table", async () => {
      let r = await mos("call", "Sys.GetInfo");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).id, agent.id);
      assert.match(r.stdout, /^{\n  "id"/);
      r = await mos("info");
      assert.match(r.stdout, new RegExp(`^id\\s+${agent.id}$`, "m"));
      r = await mos("--json", "info");
      assert.equal(JSON.parse(r.stdout).id, agent.id);
    });

    it("config-get prints strings raw, objects as JSON, and names a missing path", async () => {
      let r = await mos("config-get", "device.id");
      assert.equal(r.stdout, `${agent.id}\n`);
      r = await mos("config-get", "mqtt.ssl_cert");
      assert.equal(r.code, 0, r.stderr);
      r = await mos("config-get", "debug");
      assert.equal(typeof JSON.parse(r.stdout).level, "number");
      r = await mos("config-get", "no.such.key");
      assert.equal(r.code, 2);
      assert.equal(r.stderr, 'mos: config-get: no config value at path "no.such.key"\n');
    });

    it("errors: one line naming the step, documented exit codes, no stack", async () => {
      let r = await mos("get", "nope.bin");
      assert.equal(r.code, 3);
      assert.match(r.stderr, /^mos: get nope.bin: chunk at offset 0: device error 400: .*nope.bin/);
      assert.equal(lines(r.stderr).length, 1);
      r = await mos("call", "No.Such");
      assert.equal(r.code, 3);
      assert.match(r.stderr, /No handler for No.Such/);
      r = await mos("call", "Sys.GetInfo", "{bad");
      assert.equal(r.code, 2);
      assert.match(r.stderr, /is not a valid JSON string/);
    });
  });
}

describe("global flags", () => {
  it("MOS_PORT and MOS_TIMEOUT come from the environment", async () => {
    const r = await runMos(["ls"], { env: { MOS_PORT: agent.http, MOS_TIMEOUT: "5s" } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines(r.stdout).includes("conf0.json") || r.stdout.length > 0);
  });

  it("--verbose traces frames on stderr", async () => {
    const r = await runMos(["--port", agent.http, "--verbose", "call", "RPC.Ping"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /"method\\?":\\?"RPC.Ping/);
  });

  it("--timeout bounds a call to a device that does not answer", async () => {
    const { createServer } = await import("node:net");
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const addr = silent.address() as { port: number };
    try {
      const t0 = Date.now();
      const r = await runMos(["--port", `http://127.0.0.1:${addr.port}/rpc`, "--timeout", "700ms", "ls"]);
      assert.equal(r.code, 4, r.stderr);
      assert.ok(Date.now() - t0 < 15_000);
      assert.match(r.stderr, /^mos: ls \/: /);
    } finally {
      silent.close();
    }
  });

  it("config-set types values, saves and reboots; the device comes back with the value", async () => {
    let r = await runMos(["--port", agent.http, "config-set", "debug.level=3", "debug.stdout_topic=x/log"]);
    assert.equal(r.code, 0, r.stderr);
    // The device reboots 500 ms after answering (spec §3.4), then is away briefly: ask until it answers.
    await new Promise((res) => setTimeout(res, 1200));
    for (let i = 0; i < 40; i++) {
      r = await runMos(["--port", agent.http, "--timeout", "2s", "config-get", "debug.level"]);
      if (r.code === 0) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.equal(r.stdout, "3\n");
    r = await runMos(["--port", agent.http, "config-set", "debug.level=high"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a number/);
  });
});
