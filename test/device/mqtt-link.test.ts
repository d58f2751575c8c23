import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import mqtt from "mqtt";
import { connect } from "../../src/api/device.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";
import { type TestDevice, startTestDevice } from "./helpers.js";

const skip = mosquittoSkipReason();

describe("device over MQTT (mosquitto)", { skip }, () => {
  let broker: MosquittoBroker;
  let t: TestDevice;
  before(async () => {
    broker = await startMosquitto();
    t = await startTestDevice({
      id: "mq_dev1",
      set: ["mqtt.enable=true", `mqtt.server=127.0.0.1:${broker.port}`, "debug.stdout_topic=mq_dev1/log", "mqtt.reconnect_timeout_min=0.2"],
    });
  });
  after(async () => {
    await t?.close();
    await broker?.stop();
  });

  it("answers RPC on <id>/rpc and publishes console lines to debug.stdout_topic", async () => {
    const sub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 }, false);
    try {
      const lines: string[] = [];
      sub.on("message", (_topic, payload) => lines.push(payload.toString()));
      await sub.subscribeAsync("mq_dev1/log", { qos: 0 });
      const dev = await connect(`mqtt://127.0.0.1:${broker.port}/mq_dev1`, { timeoutMs: 10_000 });
      try {
        const info = await dev.call<{ id: string }>("Sys.GetInfo");
        assert.equal(info.id, "mq_dev1");
        assert.equal(await dev.call("Sys.SetDebug", { level: 2 }), null); // logs a console line
      } finally {
        await dev.close();
      }
      const deadline = Date.now() + 5000;
      while (!lines.some((l) => l.includes("debug level")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const line = lines.find((l) => l.includes("debug level"));
      assert.ok(line, `no console line on mq_dev1/log: ${JSON.stringify(lines)}`);
      assert.match(line, /^mq_dev1 \d+ \d+\.\d{3} 1\|debug level 2$/);
    } finally {
      await sub.endAsync();
    }
  });
});
