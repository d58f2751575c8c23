/**
 * End to end over MQTT through a real mosquitto started by the test: the built `mos` against `mos device`
 * with mqtt.enable, using the Mongoose OS walkthrough's commands verbatim (`mos --port
 * mqtt://127.0.0.1:PORT/DEVICE_ID ls`, `call Sys.GetInfo`, `config-get mqtt.server`); `mos console`
 * reading `DEVICE_ID/log`; and the mqtts form with `--cert-file/--key-file/--ca-cert-file` against a
 * mosquitto that requires client certificates, the agent using its own certificate files from its FS
 * (`mqtt.ssl_cert/ssl_key/ssl_ca_cert`, uploaded with `mos put` and set with `mos config-set`).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { mosUntil } from "../cli/mos-kill.js";
import { issueCert, makeCa, tempPemDir, writePem } from "../helpers/certs.js";
import { MOS_BIN, REPO_ROOT, runMos } from "../helpers/mos.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();
const lines = (s: string): string[] => s.split(/\r?\n/).filter(Boolean);

/** Wait until the device answers over MQTT (its link connects a moment after it starts or reboots). */
async function untilAnswers(flags: string[]): Promise<void> {
  const r = await mosUntil([...flags, "--timeout", "2s", "call", "RPC.Ping"], (x) => x.code === 0, 20_000);
  if (r.code !== 0) throw new Error(`the device never answered over MQTT: ${r.stderr}`);
}

describe("mos over MQTT (mosquitto)", { skip }, () => {
  let broker: MosquittoBroker;
  let agent: AgentProcess;
  const id = `mqtt_e2e_${process.pid}`;
  let port: string;
  before(async () => {
    broker = await startMosquitto();
    const server = `127.0.0.1:${broker.port}`;
    agent = await startAgent(["--id", id, "--set", "mqtt.enable=true", "--set", `mqtt.server=${server}`, "--set", `debug.stdout_topic=${id}/log`]);
    port = `mqtt://127.0.0.1:${broker.port}/${id}`;
    await untilAnswers(["--port", port]);
  });
  after(async () => {
    await agent?.stop();
    await broker?.stop();
  });

  it("the walkthrough: ls, call Sys.GetInfo, config-get mqtt.server", async () => {
    let r = await runMos(["--port", port, "ls"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lines(r.stdout).includes("conf0.json"), r.stdout);
    r = await runMos(["--port", port, "call", "Sys.GetInfo"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { id: string }).id, id);
    r = await runMos(["--port", port, "config-get", "mqtt.server"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `127.0.0.1:${broker.port}\n`);
  });

  it("a device that is not there: a timeout, exit code 4", async () => {
    const r = await runMos(["--port", `mqtt://127.0.0.1:${broker.port}/no_such_device`, "--timeout", "700ms", "call", "RPC.Ping"]);
    assert.equal(r.code, 4, r.stderr);
  });

  it("mos console prints the DEVICE_ID/log lines; SIGINT ends it", async () => {
    const con = spawn(process.execPath, [MOS_BIN, "--port", port, "console"], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    con.stdout.on("data", (d: Buffer) => (out += d.toString()));
    con.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => con.once("close", (code) => r(code)));
    const guard = setTimeout(() => con.kill("SIGKILL"), 30_000);
    try {
      const deadline = Date.now() + 15_000;
      let n = 0;
      while (!/debug level \d/.test(out) && Date.now() < deadline) {
        const r = await runMos(["--port", agent.http, "call", "Sys.SetDebug", JSON.stringify({ level: 2 + (n++ % 2) })], { timeoutMs: 10_000 });
        assert.equal(r.code, 0, r.stderr);
        await new Promise((res) => setTimeout(res, 200));
      }
      // The firmware's payload: "<device.id> <seq> <unix_time.3> <fd>|<text>"
      assert.match(out, new RegExp(`^${id} \\d+ \\d+\\.\\d{3} 1\\|debug level \\d$`, "m"), `console: ${JSON.stringify(out)} ${err}`);
      con.kill("SIGINT");
      assert.equal(await exited, 0, err);
    } finally {
      clearTimeout(guard);
      if (con.exitCode === null) con.kill("SIGKILL");
    }
  });
});

describe("mos over mqtts with client certificates (mosquitto require_certificate)", { skip }, () => {
  let broker: MosquittoBroker;
  let agent: AgentProcess;
  let pemDir: string;
  let files: { ca: string; devCert: string; devKey: string; mosCert: string; mosKey: string };
  const id = `mqtts_e2e_${process.pid}`;
  before(async () => {
    const ca = await makeCa();
    const server = await issueCert(ca, { cn: "localhost", usage: "server" });
    const dev = await issueCert(ca, { cn: id, usage: "client" });
    const op = await issueCert(ca, { cn: "mos-e2e", usage: "client" });
    pemDir = tempPemDir();
    files = {
      ca: writePem(pemDir, "ca.pem", ca.certPem),
      devCert: writePem(pemDir, "dev.crt", dev.certPem),
      devKey: writePem(pemDir, "dev.key", dev.keyPem, 0o600),
      mosCert: writePem(pemDir, "mos.crt", op.certPem),
      mosKey: writePem(pemDir, "mos.key", op.keyPem, 0o600),
    };
    broker = await startMosquitto({
      tls: {
        caFile: files.ca,
        certFile: writePem(pemDir, "server.crt", server.certPem),
        keyFile: writePem(pemDir, "server.key", server.keyPem, 0o600),
        requireCertificate: true,
      },
    });
    agent = await startAgent(["--id", id]);
  });
  after(async () => {
    await agent?.stop();
    await broker?.stop();
    if (pemDir) rmSync(pemDir, { recursive: true, force: true });
  });

  it("the agent gets its certificate files by mos put and config-set, then answers over mqtts", async () => {
    const http = ["--port", agent.http, "--timeout", "10s"];
    for (const [local, name] of [[files.devCert, "dev.crt"], [files.devKey, "dev.key"], [files.ca, "ca.pem"]]) {
      const r = await runMos([...http, "put", local, name]);
      assert.equal(r.code, 0, r.stderr);
    }
    const boots = agent.lines().length;
    const r = await runMos([
      ...http,
      "config-set",
      "mqtt.enable=true",
      `mqtt.server=127.0.0.1:${broker.port}`,
      "mqtt.ssl_cert=dev.crt",
      "mqtt.ssl_key=dev.key",
      "mqtt.ssl_ca_cert=ca.pem",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const deadline = Date.now() + 15_000;
    while (agent.lines().length === boots && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.ok(agent.lines().length > boots, "the agent rebooted with the new config");

    const port = `mqtts://127.0.0.1:${broker.port}/${id}`;
    const tls = ["--cert-file", files.mosCert, "--key-file", files.mosKey, "--ca-cert-file", files.ca];
    await untilAnswers(["--port", port, ...tls]);
    let m = await runMos(["--port", port, ...tls, "ls"]);
    assert.equal(m.code, 0, m.stderr);
    assert.ok(lines(m.stdout).includes("dev.crt"), m.stdout);
    m = await runMos(["--port", port, ...tls, "call", "Sys.GetInfo"]);
    assert.equal(m.code, 0, m.stderr);
    assert.equal((JSON.parse(m.stdout) as { id: string }).id, id);
    m = await runMos(["--port", port, ...tls, "config-get", "mqtt.ssl_cert"]);
    assert.equal(m.stdout, "dev.crt\n");

    // Without a client certificate the broker refuses mos: a TLS/link failure, exit code 4, one line.
    m = await runMos(["--port", port, "--ca-cert-file", files.ca, "--timeout", "5s", "ls"]);
    assert.equal(m.code, 4, m.stderr);
    assert.equal(lines(m.stderr).length, 1, m.stderr);
  });
});
