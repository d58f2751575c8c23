/**
 * End to end over MQTT through a real mosquitto: a 5 MB random file put and got back byte-identical with
 * the built `mos --port mqtt://127.0.0.1:PORT/DEVICE_ID` against `mos device` with mqtt.enable, each
 * direction interrupted once (mos SIGKILLed mid-way) and resumed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type AgentProcess, startAgent } from "../cli/agent.js";
import { interruptedRoundTrip } from "../cli/big-transfer.js";
import { mosUntil } from "../cli/mos-kill.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();

describe("5 MB transfer over MQTT (mosquitto), interrupted and resumed", { skip }, () => {
  let broker: MosquittoBroker;
  let agent: AgentProcess;
  let tmp: string;
  const id = `xfer_mqtt_${process.pid}`;
  before(async () => {
    broker = await startMosquitto();
    agent = await startAgent(["--id", id, "--set", "mqtt.enable=true", "--set", `mqtt.server=127.0.0.1:${broker.port}`]);
    tmp = mkdtempSync(join(tmpdir(), "remos-e2e-xfer-mqtt-"));
  });
  after(async () => {
    await agent?.stop();
    await broker?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("put: killed mid-way, then resumed; get: killed mid-way, then resumed; bytes identical", async () => {
    const port = `mqtt://127.0.0.1:${broker.port}/${id}`;
    const ready = await mosUntil(["--port", port, "--timeout", "2s", "call", "RPC.Ping"], (r) => r.code === 0, 15_000);
    if (ready.code !== 0) throw new Error(`the agent never answered over MQTT: ${ready.stderr}`);
    await interruptedRoundTrip({
      flags: ["--port", port, "--timeout", "10s"],
      tmp,
      name: "big-mqtt.bin",
      size: 5 * 1024 * 1024,
      // The interrupted runs use small chunks and a window of 2 (long enough to interrupt); the resumed
      // ones the defaults (48 KiB chunks, window 8), so the resume point is found across chunk sizes.
      slowFlags: ["--window", "2", "--chunk-size", "16384"],
    });
  });
});
