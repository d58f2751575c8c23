/**
 * The MQTT device end across a broker restart: it stays the same channel, reconnects with backoff and
 * subscribes again; calls during the outage fail with a clear error within their timeout (none hangs);
 * calls after the broker is back succeed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChannelClosedError, RemosError, TransportError } from "../../src/errors.js";
import type { Channel } from "../../src/rpc/channel.js";
import { RpcClient } from "../../src/rpc/client.js";
import { RpcServer } from "../../src/rpc/server.js";
import { type MqttDeviceLink, startMqttDevice } from "../../src/transport/mqtt-device.js";
import { connect } from "../../src/transport/mqtt.js";
import { reconnecting } from "../../src/transport/reconnect.js";
import { type MosquittoBroker, mosquittoSkipReason, startMosquitto } from "../helpers/mosquitto.js";

const skip = mosquittoSkipReason();
const DEV = "esp32_RECON1";

describe("mqtt device end reconnects after a broker restart", { skip, timeout: 60_000 }, () => {
  let broker: MosquittoBroker;
  let device: MqttDeviceLink;
  const channels: Channel[] = [];
  const states: string[] = [];
  const toClose: Array<{ close(): Promise<void> }> = [];
  const server = new RpcServer({ localIds: [DEV] });
  server.addHandler("Test.Echo", (p) => p);

  before(async () => {
    broker = await startMosquitto();
    device = await startMqttDevice({
      server: `127.0.0.1:${broker.port}`,
      clientId: DEV,
      deviceId: DEV,
      reconnect: { minMs: 50, maxMs: 400 },
      sendWaitMs: 300,
      onChannel: (ch) => {
        channels.push(ch);
        server.serve(ch);
      },
    });
    device.onStateChange((s) => states.push(s));
  });

  after(async () => {
    for (const c of toClose) await c.close().catch(() => undefined);
    await device?.close();
    await broker?.stop();
  });

  const portUrl = (): URL => new URL(`mqtt://127.0.0.1:${broker.port}/${DEV}`);

  it("survives the broker going away and coming back", async () => {
    // Up: a call works.
    const first = await connect(portUrl(), { timeoutMs: 5000 });
    const c1 = new RpcClient(first, { timeoutMs: 5000 });
    toClose.push(c1);
    assert.equal(await c1.call("Test.Echo", "before"), "before");

    // A client that reconnects too (what the CLI's --reconnect and long-lived API users get).
    const lasting = reconnecting((signal) => connect(portUrl(), { timeoutMs: 2000, signal }), {
      info: { type: "MQTT", peer: broker.url, maxFrameSize: 256 * 1024 },
      minMs: 50,
      maxMs: 400,
      sendWaitMs: 300,
    });
    const c2 = new RpcClient(lasting, { timeoutMs: 1500 });
    toClose.push(c2);
    await lasting.whenConnected(5000);
    assert.equal(await c2.call("Test.Echo", "lasting"), "lasting");

    // The broker dies: a call pending on the plain client fails at once with ChannelClosedError.
    const hanging = assert.rejects(c1.call("Test.Echo", "lost?", { timeout: 20_000 }), (e: Error) => e instanceof ChannelClosedError && /broker .* lost/.test(e.message));
    const t0 = Date.now();
    await broker.kill();
    await hanging;
    assert.ok(Date.now() - t0 < 10_000);
    await waitFor(() => !device.connected, 5000);

    // During the outage: new connections are refused with a clear error, calls fail within their timeout.
    await assert.rejects(connect(portUrl(), { timeoutMs: 2000 }), (e: Error) => e instanceof TransportError && /connection refused/.test(e.message));
    const t1 = Date.now();
    await assert.rejects(c2.call("Test.Echo", "during"), (e: Error) => e instanceof RemosError && /down, reconnecting|no answer within/.test(e.message));
    assert.ok(Date.now() - t1 < 5000, "the call failed within its timeout");
    const sendDuring = device.channel.send({ dst: "someone", method: "X" });
    await assert.rejects(sendDuring, (e: Error) => e instanceof TransportError && /down, reconnecting/.test(e.message));

    // Back: the device end reconnects and re-subscribes; the same channel object serves calls.
    await broker.restart();
    await waitFor(() => device.connected, 10_000);
    await lasting.whenConnected(10_000);
    assert.equal(await c2.call("Test.Echo", "after", { timeout: 5000 }), "after");
    const again = await connect(portUrl(), { timeoutMs: 5000 });
    const c3 = new RpcClient(again, { timeoutMs: 5000 });
    toClose.push(c3);
    assert.equal(await c3.call("Test.Echo", "fresh"), "fresh");
    assert.equal(channels.length, 1, "onChannel was called once: the channel is the same object across reconnects");
    assert.ok(states.includes("waiting") && states.includes("connecting") && states.at(-1) === "connected", states.join(","));

    await c3.close();
    await c2.close();
    await c1.close().catch(() => undefined);
  });

  it("close stops the device end for good", async () => {
    await device.close();
    assert.equal(device.connected, false);
    assert.equal(device.channel.closed, true);
    await assert.rejects(device.channel.send({ dst: "x", method: "Y" }), ChannelClosedError);
  });
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
