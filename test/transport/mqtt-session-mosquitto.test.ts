/**
 * MqttSession against a real mosquitto: a publish to a topic MQTT forbids (a wildcard or NUL, e.g. a reply
 * topic built from a hostile request's `src`), or a subscription to a malformed filter, is refused locally
 * with MqttProtocolError and the connection stays up, where sending it would make mosquitto drop the connection; and the device end
 * keeps answering after a request whose `src` is such a topic.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RpcClient } from "../../src/rpc/client.js";
import type { MqttDeviceLink } from "../../src/transport/mqtt-device.js";
import { MqttSession } from "../../src/transport/mqtt-session.js";
import { MqttProtocolError } from "../../src/transport/mqtt-wire.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";
import { servedMqttDevice } from "../helpers/served-mqtt-device.js";

const skip = mosquittoSkipReason();

describe("mqtt-session with mosquitto: forbidden topics", { skip, timeout: 30_000 }, () => {
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  let raw: MqttSession;
  let client: RpcClient;

  before(async () => {
    broker = await startMosquitto();
    ({ device, client } = await servedMqttDevice(broker, "wild_dev"));
    raw = await MqttSession.connect({ url: broker.url, clientId: "wild_raw" });
  });

  after(async () => {
    await client?.close();
    raw?.destroy();
    await device?.close();
    await broker?.stop();
  });

  it("a publish to a wildcard or NUL topic, a malformed filter, are refused locally; the connection stays up", async () => {
    for (const t of ["a/+/rpc", "a/#", "a\0b", ""]) {
      await assert.rejects(raw.publish(t, "x", 1), MqttProtocolError, JSON.stringify(t));
      await assert.rejects(raw.publish(t, "x", 0), MqttProtocolError, JSON.stringify(t));
    }
    for (const f of ["a+b", "a/#/b"]) await assert.rejects(raw.subscribe(f, 1), MqttProtocolError, f);
    await raw.publish("wild/ok", "x", 1);
    assert.equal(raw.connected, true);
  });

  it("a request whose src is a wildcard topic does not cost the device its connection", async () => {
    let drops = 0;
    device.onStateChange((s) => {
      if (s !== "connected") drops++;
    });
    await raw.publish("wild_dev/rpc", JSON.stringify({ id: 1, src: "evil/+", method: "RPC.Ping" }), 1);
    await raw.publish("wild_dev/rpc", JSON.stringify({ id: 2, src: "evil/#", method: "RPC.Ping" }), 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await client.call("RPC.Ping"), { channel_info: "" });
    assert.equal(drops, 0, "the device link never dropped");
  });
});
