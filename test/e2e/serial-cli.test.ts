/**
 * End to end over SERIAL: the built `mos` against the real agent (`mos device --serial PTY`) through a
 * socat pty pair (a null-modem cable): ls, call, config-get, config-set with the in-process reboot (the
 * UART device end comes back), put/get unpaced and paced, console text between frames, and `mos console`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { mosUntil } from "../cli/mos-kill.js";
import { MOS_BIN, REPO_ROOT, runMos } from "../helpers/mos.js";
import { type PtyPair, socatMissing, startPtyPair } from "../helpers/pty.js";

const skip = socatMissing();
const lines = (s: string): string[] => s.split(/\r?\n/).filter(Boolean);

describe("mos over a serial line (socat pty pair)", { skip }, () => {
  let pty: PtyPair;
  let agent: AgentProcess;
  let tmp: string;
  const mos = (...args: string[]) => runMos(["--port", pty.a, "--timeout", "10s", ...args], { timeoutMs: 30_000 });

  before(async () => {
    pty = await startPtyPair();
    agent = await startAgent(["--serial", pty.b]);
    tmp = mkdtempSync(join(tmpdir(), "remos-e2e-serial-"));
  });
  after(async () => {
    await agent?.stop();
    await pty?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("ls, call Sys.GetInfo (plain path and serial:// URL), config-get", async () => {
    let r = await mos("ls");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines(r.stdout).includes("conf0.json"), r.stdout);
    r = await runMos(["--port", `serial://${pty.a}`, "--timeout", "10s", "call", "Sys.GetInfo"], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { id: string; mg_id: string };
    assert.equal(info.id, agent.id);
    assert.match(info.mg_id, /^remos\//);
    r = await mos("config-get", "device.id");
    assert.equal(r.stdout, `${agent.id}\n`);
    r = await mos("config-get", "rpc.uart.baud_rate");
    assert.equal(r.stdout, "115200\n");
  });

  it("RPC replies are found among console text on the same line (Sys.SetDebug logs while answering)", async () => {
    const r = await mos("call", "Sys.SetDebug", '{"level": 3}');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "null");
  });

  it("put/get unpaced (--rpc-uart-no-delay) and paced (the default at 115200) are byte-identical", async () => {
    const big = randomBytes(200_000);
    writeFileSync(join(tmp, "fast.bin"), big);
    let r = await mos("--rpc-uart-no-delay", "--json", "put", join(tmp, "fast.bin"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { verified: string }).verified, "sha256");
    r = await mos("--rpc-uart-no-delay", "get", "fast.bin", "-o", join(tmp, "fast.back"));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(tmp, "fast.back")).equals(big));
    r = await mos("ls", "-l");
    assert.ok(lines(r.stdout).includes("fast.bin 200000"), r.stdout);

    const small = randomBytes(1500);
    writeFileSync(join(tmp, "paced.bin"), small);
    r = await mos("--json", "put", join(tmp, "paced.bin"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { size: number }).size, 1500);
    r = await mos("get", "paced.bin", "-o", join(tmp, "paced.back"));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(join(tmp, "paced.back")).equals(small));
  });

  it("config-set saves and reboots; the UART end comes back with the value after the in-process reboot", async () => {
    const boots = agent.lines().length;
    let r = await mos("config-set", "debug.level=2", "debug.stderr_topic=lab-7/err");
    assert.equal(r.code, 0, r.stderr);
    r = await mosUntil(["--port", pty.a, "--timeout", "2s", "config-get", "debug.stderr_topic"], (x) => x.code === 0 && agent.lines().length > boots, 20_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "lab-7/err\n");
    assert.ok(agent.lines().length > boots, "the agent rebooted");
    r = await mos("call", "Sys.GetInfo");
    assert.equal(r.code, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { uptime: number }).uptime < 30);
  });

  it("mos console shows the device console text that arrives between frames; SIGINT ends it", async () => {
    const con = spawn(process.execPath, [MOS_BIN, "--port", pty.a, "console"], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["pipe", "pipe", "pipe"], // stdin stays open: the console runs until interrupted
    });
    let out = "";
    let err = "";
    con.stdout.on("data", (d: Buffer) => (out += d.toString()));
    con.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => con.once("close", (code) => r(code)));
    const guard = setTimeout(() => con.kill("SIGKILL"), 30_000);
    try {
      // Make the device log over another link (HTTP) until the console has the port open and shows it.
      const deadline = Date.now() + 15_000;
      let level = 0;
      while (!/debug level \d/.test(out) && Date.now() < deadline) {
        const r = await runMos(["--port", agent.http, "call", "Sys.SetDebug", JSON.stringify({ level: 2 + (level++ % 2) })], { timeoutMs: 10_000 });
        assert.equal(r.code, 0, r.stderr);
        await new Promise((res) => setTimeout(res, 200));
      }
      assert.match(out, /debug level \d/, `console output: ${JSON.stringify(out)} ${err}`);
      con.kill("SIGINT");
      assert.equal(await exited, 0, err);
    } finally {
      clearTimeout(guard);
      if (con.exitCode === null) con.kill("SIGKILL");
    }
  });
});
