/**
 * Hostile MQTT input never takes the device end down: a message nested so deeply that re-serialising it
 * overflows the stack, as params on `<id>/rpc/<Method>` and as the id on `<id>/rpc`, is dropped, and the
 * device keeps answering.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import mqtt, { type MqttClient } from "mqtt";
import type { RpcClient } from "../../src/rpc/client.js";
import type { MqttDeviceLink } from "../../src/transport/mqtt-device.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";
import { servedMqttDevice } from "../helpers/served-mqtt-device.js";

const skip = mosquittoSkipReason();

describe("MQTT device end under hostile input", { skip }, () => {
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  let raw: MqttClient;
  let client: RpcClient;

  before(async () => {
    broker = await startMosquitto();
    ({ device, client } = await servedMqttDevice(broker, "hostile_dev"));
    raw = await mqtt.connectAsync(broker.url, { clientId: "hostile_raw", reconnectPeriod: 0 }, false);
  });

  after(async () => {
    await client?.close();
    await raw?.endAsync();
    await device?.close();
    await broker?.stop();
  });

  it("drops deeply nested params and ids, and keeps answering", async () => {
    const deep = "[".repeat(120_000) + "]".repeat(120_000);
    await raw.publishAsync("hostile_dev/rpc/RPC.Ping", `{"id":1,"src":"x","params":${deep}}`, { qos: 1 });
    await raw.publishAsync("hostile_dev/rpc", `{"id":${deep},"src":"x","method":"RPC.Ping"}`, { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await client.call("RPC.Ping"), { channel_info: "" });
  });

  it("a method in the topic replaces the payload's own, even one that is not a string", async () => {
    await raw.subscribeAsync("hostile_src/rpc", { qos: 1 });
    const answers: unknown[] = [];
    const got = new Promise<void>((resolve) => {
      raw.on("message", (topic, payload) => {
        if (topic !== "hostile_src/rpc") return;
        answers.push(JSON.parse(payload.toString()));
        if (answers.length === 2) resolve();
      });
    });
    await raw.publishAsync("hostile_dev/rpc/RPC.Ping", `{"id":7,"src":"hostile_src"}`, { qos: 1 });
    await raw.publishAsync("hostile_dev/rpc/RPC.Ping", `{"id":8,"src":"hostile_src","method":5}`, { qos: 1 });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([got, new Promise((_r, j) => (timer = setTimeout(() => j(new Error("no answers within 5 s")), 5000)))]).finally(() => clearTimeout(timer));
    const ids = answers.map((a) => (a as { id: number; result?: unknown }).id).sort();
    assert.deepEqual(ids, [7, 8]);
    for (const a of answers) assert.deepEqual((a as { result?: unknown }).result, { channel_info: "" });
  });
});
