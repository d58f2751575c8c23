/**
 * MqttSession against a real mosquitto: a publish to a topic MQTT forbids (a wildcard or NUL, e.g. a reply
 * topic built from a hostile request's `src`), or a subscription to a malformed filter, is refused locally
 * with MqttProtocolError and the connection stays up, where sending it would make mosquitto drop the connection; and the device end
 * keeps answering after a request whose `src` is such a topic.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type MqttDeviceLink, startMqttDevice } from "../../src/transport/mqtt-device.js";
import { connect } from "../../src/transport/mqtt.js";
import { MqttSession } from "../../src/transport/mqtt-session.js";
import { MqttProtocolError } from "../../src/transport/mqtt-wire.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();

describe("mqtt-session with mosquitto: forbidden topics", { skip, timeout: 30_000 }, () => {
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  let raw: MqttSession;
  let client: RpcClient;

  before(async () => {
    broker = await startMosquitto();
    const server = new RpcServer({ localIds: ["wild_dev"] });
    device = await startMqttDevice({
      server: `127.0.0.1:${broker.port}`,
      clientId: "wild_dev",
      deviceId: "wild_dev",
      reconnect: { minMs: 100, maxMs: 1000 },
      onChannel: (ch) => server.serve(ch),
    });
    raw = await MqttSession.connect({ url: broker.url, clientId: "wild_raw" });
    client = new RpcClient(await connect(new URL(`mqtt://127.0.0.1:${broker.port}/wild_dev`), { timeoutMs: 5000 }), { timeoutMs: 5000 });
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
